/**
 * The worker's environment checks (environment.ts) in its order: at start, where a failure
 * refuses to start (WORKER_UNFIT), and again after a fault of its own environment, while its
 * intake is stopped (no wait for the engine then: the next recheck comes 5 s later). Fallback
 * engines are not checked, only asked once whether they answer, for the log.
 */
import type { Redis } from 'ioredis';
import type { Config } from '../config.ts';
import type { Logger } from '../observe/log.ts';
import type { BlobStore } from '../store/blobs.ts';
import type { EngineSet } from './engine.ts';
import { checkBlobs, checkEngine, checkRedis, type EngineFacts } from './environment.ts';

/** The worker's parts the checks read (InferWorkerParts has them). */
interface CheckedParts {
  config: Config;
  redis: Redis;
  blobs: BlobStore;
  engines: EngineSet;
}

/** Redis, the blob store, the primary engine and its model, in that order (the first to fail is the one named). */
export async function checkAtStart(parts: CheckedParts, log: Logger, signal?: AbortSignal): Promise<EngineFacts> {
  const { config, redis, blobs, engines } = parts;
  const engine = engines.primary;
  await checkRedis(redis);
  await checkBlobs(blobs, log);
  return checkEngine({ redis, blobs, client: engine.client, model: config.model ?? null, textOnly: config.textOnly, log, limiter: engine.limiter }, config.engineStartTimeoutMs, signal);
}

/** The checks again after a fault of the worker's own environment: throws while it still fails. */
export async function recheckEnvironment(parts: CheckedParts, log: Logger): Promise<EngineFacts> {
  const { config, redis, blobs, engines } = parts;
  await checkBlobs(blobs);
  await blobs.check();
  return checkEngine({ redis, blobs, client: engines.primary.client, model: config.model ?? null, textOnly: config.textOnly, log }, 0);
}

/** Says whether each fallback engine answers now (it is used only once the primary is down). */
export function sayFallbacks(engines: EngineSet, log: Logger): void {
  for (const fallback of engines.fallbacks) {
    void fallback.client.models(AbortSignal.timeout(10_000)).then(
      (models) => log.info({ engine: fallback.label, models: models.map((m) => m.id) }, 'fallback engine answers'),
      (err: Error) => log.warn({ engine: fallback.label, err: err.message }, 'fallback engine does not answer now'),
    );
  }
}
