/**
 * What a worker needs before it takes any unit, checked at start (it refuses to start, saying
 * which check failed: WORKER_UNFIT) and again while it runs after a fault of its own environment
 * (it then stops taking work, reports itself unhealthy, and resumes when the checks pass):
 *
 *   redis     answers PING
 *   blobs     BLOB_DIR exists here (a folder; on s3:// the bucket, with credentials that work),
 *             and once anything was enqueued, holds the store's marker
 *   engine    /v1/models answers (an engine still loading is waited for, up to a limit)
 *   model     the configured MODEL is one the engine serves: listed at /v1/models, or taken by
 *             its chat under that name (Ollama takes `llava` for the `llava:latest` it lists)
 *   images    the model takes an image (unless the worker is told it is text-only)
 */
import type { Redis } from 'ioredis';
import sharp from 'sharp';
import { EngineError } from '../engine/classify.ts';
import type { EngineClient } from '../engine/client.ts';
import type { ModelInfo } from '../engine/types.ts';
import { DocbatchError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import type { BlobStore } from '../store/blobs.ts';
import type { EngineRateLimiter, RatePass } from './rate-limit.ts';

/** A 28 x 28 white PNG: one image token on Qwen-style models, enough to learn whether images are taken. */
let probePng: Promise<string> | undefined;
function probeImage(): Promise<string> {
  probePng ??= sharp({ create: { width: 28, height: 28, channels: 3, background: '#ffffff' } })
    .png()
    .toBuffer()
    .then((b) => b.toString('base64'));
  return probePng;
}

export interface EnvironmentParts {
  redis: Redis;
  blobs: BlobStore;
  client: EngineClient;
  /** The MODEL setting (null: the engine's first). */
  model: string | null;
  /** Do not require image input (a worker for text units of a named text model). */
  textOnly: boolean;
  log: Logger;
  /** The engine's shared rate limits: the probe is a request like any other. */
  limiter?: EngineRateLimiter | null;
}

export interface EngineFacts {
  /** Models the engine serves (its /v1/models). */
  served: ModelInfo[];
  /** The model requests name when the run names none. */
  model: string;
  /** Whether that model takes images (null: could not tell). */
  acceptsImages: boolean | null;
}

function unfit(check: string, message: string, cause?: unknown): DocbatchError {
  return new DocbatchError('WORKER_UNFIT', `${check}: ${message}`, cause === undefined ? {} : { cause });
}

export async function checkRedis(redis: Redis): Promise<void> {
  try {
    await redis.ping();
  } catch (err) {
    throw unfit('redis', `Redis does not answer (${(err as Error).message})`, err);
  }
}

/** The blob store: its folder (bucket) must be reachable here; its marker says it is the producers' store. */
export async function checkBlobs(blobs: BlobStore, log?: Logger): Promise<void> {
  try {
    await blobs.reach();
  } catch (err) {
    throw unfit('blobs', (err as Error).message, err);
  }
  try {
    await blobs.check();
  } catch (err) {
    log?.warn({ dir: blobs.location }, 'BLOB_DIR holds no docbatch store yet (nothing enqueued into it so far?); units whose blobs are missing will be handed back, not failed');
  }
}

/** Waits for /v1/models (up to `waitMs` while the engine is unreachable or loading). */
export async function checkEngine(parts: EnvironmentParts, waitMs: number, signal?: AbortSignal): Promise<EngineFacts> {
  const { client, log } = parts;
  const deadline = performance.now() + waitMs;
  let served: ModelInfo[] = [];
  let nextSay = 0;
  for (let delay = 250; ; delay = Math.min(5000, delay * 2)) {
    try {
      served = await client.models(signal);
      break;
    } catch (err) {
      const code = err instanceof EngineError ? err.code : 'ENGINE_ERROR';
      if (code === 'ENGINE_UNAUTHORIZED') throw unfit('engine', `${(err as Error).message}`, err);
      // A redirect, or a host with no deployment, is ENGINE_URL's, not an engine still loading: refused at once.
      if (err instanceof EngineError && err.wrongUrl) {
        const url = endpoint(client, '/v1/models');
        throw unfit('engine', err.message.includes(url) ? err.message : `${url}: ${err.message}`, err);
      }
      if (code === 'ENGINE_UNSUPPORTED' && parts.model) {
        // A server without /v1/models may still serve MODEL: the probe below asks its chat.
        served = [{ id: parts.model, maxModelLen: null }];
        break;
      }
      // No /v1/models here and no MODEL to go by: most likely a wrong ENGINE_URL, but a gateway
      // restarting answers 404 too. Said at once; refused at the deadline.
      const wrongUrl = code === 'ENGINE_UNSUPPORTED' ? `${endpoint(client, '/v1/models')} answers: ${(err as Error).message}. ${ROOT_HINT}; for a server without /v1/models, set MODEL` : null;
      if (performance.now() + delay > deadline) throw unfit('engine', wrongUrl ?? `no answer from /v1/models within ${Math.round(waitMs / 1000)} s (${(err as Error).message})`, err);
      // Said at once, then every 30 s: how long it has waited, and how long it will.
      if (performance.now() >= nextSay) {
        const waited = Math.round((performance.now() - (deadline - waitMs)) / 1000);
        const left = `${waited > 0 ? `waited ${waited} s; ` : ''}waiting up to ${Math.round(waitMs / 1000)} s in all (ENGINE_START_TIMEOUT_MS)`;
        const down = code === 'ENGINE_DOWN'
          ? `nothing answers at ${endpoint(client, '/v1/models')} (${(err as Error).message}): the engine is still starting or loading its model, or ENGINE_URL is wrong`
          : `the engine does not answer ${endpoint(client, '/v1/models')} yet (${(err as Error).message}; loading?)`;
        log.warn({ code, err: (err as Error).message }, wrongUrl ? `${wrongUrl}; ${left} in case it is a gateway restarting` : `${down}; ${left}`);
        nextSay = performance.now() + 30_000;
      }
      await new Promise((r) => setTimeout(r, delay));
      signal?.throwIfAborted();
    }
  }
  if (served.length === 0 && !parts.model) throw unfit('model', 'the engine lists no model at /v1/models; set MODEL');
  // A MODEL /v1/models does not list may still be taken by the chat under that name (Ollama's
  // `llava` for `llava:latest`, a gateway listing only some of its models): the chat decides.
  const unlisted = parts.model && !served.some((m) => m.id === parts.model)
    ? unfit('model', `MODEL ${JSON.stringify(parts.model)} is not served by the engine (it serves ${served.map((m) => JSON.stringify(m.id)).join(', ') || 'none'})`)
    : null;
  const model = parts.model ?? served[0]!.id;
  // A chat that refuses the model or has no route (a wrong ENGINE_URL, a gateway mid-restart):
  // said at once, asked again until the deadline, then refused.
  let acceptsImages: boolean | null;
  for (let delay = 1000, said = false; ; delay = Math.min(5000, delay * 2)) {
    try {
      acceptsImages = await probeImages(client, model, log, signal, parts.limiter ?? null);
      break;
    } catch (err) {
      // Neither listed nor taken by the chat: refused at once.
      if (unlisted && err instanceof DocbatchError && err.cause instanceof EngineError && err.cause.code === 'MODEL_NOT_FOUND') throw new DocbatchError(unlisted.code, unlisted.message, { cause: err });
      if (performance.now() + delay > deadline) throw err;
      if (!said) log.warn({ err: (err as Error).message }, 'the engine refuses the probe request; asking again until ENGINE_START_TIMEOUT_MS');
      said = true;
      await new Promise((r) => setTimeout(r, delay));
      signal?.throwIfAborted();
    }
  }
  if (unlisted) {
    // The chat could not tell (busy, an error of its own): a model nobody vouched for is refused.
    if (acceptsImages === null) throw unfit('model', `${unlisted.message.replace(/^model: /, '')}, and the chat's answer did not show it takes that name`);
    log.warn({ model, served: served.map((m) => m.id) }, 'MODEL is not listed at /v1/models, but the chat takes it');
  }
  if (acceptsImages === false && !parts.textOnly) {
    throw unfit('images', `the model ${JSON.stringify(model)} takes no images, so this worker would fail every page; serve a vision-language model, or start it with --text-only to take only chat work queued for that model by name`);
  }
  return { served, model, acceptsImages };
}

/** An engine that has not answered the probe by then is busy, not unable: the worker starts, assuming images work. */
const PROBE_TIMEOUT_MS = 15_000;

const ROOT_HINT = "ENGINE_URL must be the server's root (e.g. http://127.0.0.1:8000, with no /v1)";

/** The full URL of one of the engine's routes, for messages. */
function endpoint(client: EngineClient, path: string): string {
  return `${client.origin}${client.prefix}${path}`;
}

/**
 * One tiny request with one image: false when the server says the model takes none, null when it
 * cannot tell (busy, slow, an error of its own). A refusal that every unit would meet is
 * WORKER_UNFIT: no chat route there (a wrong ENGINE_URL), a model the chat refuses although
 * /v1/models lists it (a gateway's alias, a renamed deployment), credentials refused. Without
 * this the worker would take units only to hand them back, again and again.
 */
export async function probeImages(client: EngineClient, model: string, log: Logger, signal?: AbortSignal, limiter: EngineRateLimiter | null = null): Promise<boolean | null> {
  let pass: RatePass | null = null;
  try {
    const png = await probeImage();
    if (limiter) pass = await limiter.acquire(64, signal ?? AbortSignal.timeout(PROBE_TIMEOUT_MS));
    await client.chat(
      {
        model,
        maxTokens: 1,
        temperature: 0,
        requestId: 'docbatch-image-probe',
        messages: [{ role: 'user', content: [{ type: 'text', text: 'Reply with one word.' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }] }],
      },
      signal ? AbortSignal.any([signal, AbortSignal.timeout(PROBE_TIMEOUT_MS)]) : AbortSignal.timeout(PROBE_TIMEOUT_MS),
      {
        // Sent again for a setting the endpoint refused: a request of its own to the rate limits.
        beforeResend: async () => {
          if (!limiter) return;
          const used = pass;
          pass = null;
          await used?.finish();
          pass = await limiter.acquire(64, signal ?? AbortSignal.timeout(PROBE_TIMEOUT_MS));
        },
      },
    );
    return true;
  } catch (err) {
    if (err instanceof EngineError && err.code === 'MODEL_NO_IMAGES') return false;
    if (err instanceof EngineError && err.code === 'MODEL_NOT_FOUND') {
      throw unfit('model', `${endpoint(client, '/v1/chat/completions')} refuses the model ${JSON.stringify(model)}: ${err.message}. Set MODEL to the name the server's chat takes`, err);
    }
    if (err instanceof EngineError && err.code === 'ENGINE_UNSUPPORTED' && err.status === 404) {
      throw unfit('engine', `${endpoint(client, '/v1/chat/completions')} answers: ${err.message}. ${ROOT_HINT}`, err);
    }
    if (err instanceof EngineError && err.code === 'ENGINE_UNAUTHORIZED') throw unfit('engine', err.message, err);
    log.warn({ code: (err as { code?: string }).code, err: (err as Error).message }, 'could not tell whether the model takes images; assuming it does');
    return null;
  } finally {
    await pass?.finish();
  }
}
