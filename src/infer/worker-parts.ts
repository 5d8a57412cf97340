/**
 * What a GPU worker is made of (InferWorkerParts), and building it from config
 * (createInferWorker): Redis connections, the blob store, the queues, the feeder, and the
 * engines (the primary and its fallbacks, each with its rate limiter). Tests may build their own.
 */
import type { Redis } from 'ioredis';
import { connectRedis, openInferQueues, openQueue, type TypedQueue } from '../../queues/connect.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../observe/log.ts';
import type { BlobStore } from '../store/blobs.ts';
import { ChunkReader } from '../store/chunk-index.ts';
import { DocStore } from '../store/docs.ts';
import { Feeder } from '../store/feed.ts';
import { openBlobStore } from '../store/storage.ts';
import { Engine, EngineSet, shownUrl } from './engine.ts';
import { EngineRateLimiter, type RateLimits } from './rate-limit.ts';
import { InferWorker } from './worker.ts';

/** Everything a worker is made of, built from config by createInferWorker (tests may build their own). */
export interface InferWorkerParts {
  config: Config;
  log: Logger;
  redis: Redis;
  bullRedis: Redis;
  store: DocStore;
  blobs: BlobStore;
  chunks: ChunkReader;
  feeder: Feeder;
  /** The primary engine and its fallbacks. */
  engines: EngineSet;
  writeQueue: TypedQueue<'write'>;
  inferQueue: (name: string) => TypedQueue<'infer'>;
  /** Closes the queues opened through inferQueue. */
  closeQueues: () => Promise<void>;
}

export function createInferWorker(config: Config, log: Logger): InferWorker {
  const redis = connectRedis(config.redisUrl, 'worker');
  const bullRedis = connectRedis(config.redisUrl, 'worker');
  const blobs = openBlobStore(config);
  const queues = openInferQueues(config, redis);
  const inferQueue = (name: string) => queues.get(name);
  const workerLog = log.child({ worker: config.workerName });
  const engineFor = (url: string, apiKey: string | undefined, limits: RateLimits) =>
    new Engine(
      {
        url,
        ...(apiKey ? { apiKey } : {}),
        ...(config.model ? { model: config.model } : {}),
        requestTimeoutMs: config.requestTimeoutMs,
        initialInFlight: config.initialInFlight,
        maxInFlight: config.maxInFlight,
        cleanIntervalMs: config.cleanIntervalMs,
        ceilingHoldMs: config.ceilingHoldMs,
      },
      workerLog,
      new EngineRateLimiter(redis, config.prefix, shownUrl(url), limits),
    );
  const primary = engineFor(config.engineUrl, config.engineApiKey, {
    ...(config.engineRpm !== undefined ? { rpm: config.engineRpm } : {}),
    ...(config.engineTpm !== undefined ? { tpm: config.engineTpm } : {}),
    windowMs: config.engineRateWindowMs,
    requestTimeoutMs: config.requestTimeoutMs,
  });
  const fallbacks = config.fallbackEngineUrls.map((url, i) => engineFor(url, config.fallbackApiKeys[i] || undefined, {}));
  return new InferWorker({
    config,
    log: workerLog,
    redis,
    bullRedis,
    store: new DocStore(redis, config.prefix),
    blobs,
    chunks: new ChunkReader(blobs),
    feeder: new Feeder(redis, config.prefix, inferQueue, { documents: config.feedDocuments }),
    engines: new EngineSet(primary, fallbacks, config.fallbackAfterMs),
    writeQueue: openQueue('write', config, redis),
    inferQueue,
    closeQueues: () => queues.close(2000),
  });
}
