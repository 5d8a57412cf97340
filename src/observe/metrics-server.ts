/**
 * `/metrics` and `/health` over plain node:http, for a worker (METRICS_PORT). The dashboard
 * serves the same two routes from its own server with the same functions (`healthReport`).
 * A request whose Host does not name this server is refused (host-guard.ts, DNS rebinding).
 *
 * `/health` is a readiness proof, not a PING: every check must pass within its timeout for a
 * 200; otherwise 503. The body is JSON either way, `{ ok, checks: { name: { ok, ... } } }`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { ConfigError } from '../errors.ts';
import { hostRefusal } from './host-guard.ts';
import type { CountableQueue } from './metrics.ts';

export interface CheckResult {
  ok: boolean;
  [detail: string]: unknown;
}

/** A named check; it may throw (a failure) and is given up on after the report's timeout. */
export type HealthCheck = (signal: AbortSignal) => Promise<CheckResult>;

export interface HealthReport {
  ok: boolean;
  checks: Record<string, CheckResult>;
}

/** Runs every check at once; a check that throws or times out fails with its message. */
export async function healthReport(checks: Record<string, HealthCheck>, timeoutMs = 3000): Promise<HealthReport> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      const started = performance.now();
      const signal = AbortSignal.timeout(timeoutMs);
      try {
        const timedOut = new Promise<never>((_, reject) =>
          signal.addEventListener('abort', () => reject(new Error(`no answer within ${timeoutMs} ms`)), { once: true }),
        );
        // The loser of the race rejects later; that must not surface as an unhandled rejection.
        timedOut.catch(() => {});
        const result = await Promise.race([check(signal), timedOut]);
        return [name, { ...result, ms: Math.round(performance.now() - started) }] as const;
      } catch (err) {
        return [name, { ok: false, error: (err as Error).message, ms: Math.round(performance.now() - started) }] as const;
      }
    }),
  );
  const out = Object.fromEntries(entries) as Record<string, CheckResult>;
  return { ok: entries.every(([, r]) => r.ok), checks: out };
}

/** Redis answers PING. */
export function redisCheck(redis: Redis): HealthCheck {
  return async () => {
    const answer = await redis.ping();
    return { ok: answer === 'PONG' };
  };
}

/** Every queue answers a count (proves BullMQ's keys are reachable with this prefix). */
export function queuesCheck(queues: ReadonlyArray<{ name: string; queue: CountableQueue }>): HealthCheck {
  return async () => {
    const counts = await Promise.all(queues.map(async ({ name, queue }) => [name, await queue.getJobCounts('waiting', 'active', 'failed')] as const));
    return { ok: true, queues: Object.fromEntries(counts) };
  };
}

/** Where to look for a worker's connection in Redis (BullMQ names it `...:w:{worker name}`). */
export interface Registration {
  queue: { getWorkers(): Promise<Array<Record<string, string>>> };
  name: string;
}

/**
 * What a GPU worker must prove: Redis answers, its engine answers `/health` (or `/v1/models`),
 * and its BullMQ loop runs and is not paused, except for a pause the worker made itself because
 * the engine is down (then the engine check already fails, and says why). With `registration`,
 * the loop must also be seen from Redis's side: a worker whose connection Redis no longer lists
 * (dropped and never re-established) takes nothing, however alive its process looks.
 */
/** An engine as health reads it. */
export interface CheckedEngine {
  readonly label: string;
  /**
   * `health()`: the engine's /health as its monitor reads it (a gateway's /health that never
   * answered 2xx is no signal: /v1/models then says).
   */
  readonly monitor: { readonly isDown: boolean; health(signal?: AbortSignal): Promise<string> };
}

/** What a worker's health reads: its Redis, its engines, its loops and what paused them. */
export interface CheckedWorker {
  readonly redis: Redis;
  /** The primary engine. */
  readonly engine: CheckedEngine;
  /** Its primary and fallbacks: `pick()` is the engine units go to now (null: none may be used). */
  readonly engines: { pick(): CheckedEngine | null };
  readonly loop: { running: boolean; paused: boolean; closing: boolean };
  readonly overBudget: boolean;
  readonly activeUnits: number;
  /** A fault of the worker's own environment that stopped its intake (null while healthy). */
  readonly unhealthy: { code: string; message: string } | null;
}

export function workerChecks(worker: CheckedWorker, registration?: Registration): Record<string, HealthCheck> {
  return {
    redis: redisCheck(worker.redis),
    engine: async (signal) => {
      // With the primary down, a fallback that has taken over is the engine the worker works
      // with: it answering is what "can take work" means (ENGINE_FALLBACK_URLS).
      const using = worker.engines.pick();
      if (using && using !== worker.engine) {
        const state = await using.monitor.health(signal);
        return { ok: state === 'up', state, outage: true, sendingTo: using.label };
      }
      const state = await worker.engine.monitor.health(signal);
      return { ok: state === 'up', state, outage: worker.engine.monitor.isDown };
    },
    environment: async () => {
      const fault = worker.unhealthy;
      return fault ? { ok: false, code: fault.code, message: fault.message } : { ok: true };
    },
    loop: async () => {
      const { running, paused, closing } = worker.loop;
      const engineDown = worker.engine.monitor.isDown;
      const registered = registration ? await isRegistered(registration) : 'unknown';
      // Paused on purpose (engine outage, budget spent) is healthy: the worker is doing what it should.
      const ok = running && !closing && (!paused || engineDown || worker.overBudget) && registered !== false;
      return { ok, running, paused, closing, engineDown, overBudget: worker.overBudget, registered, activeUnits: worker.activeUnits };
    },
  };
}

/** true/false from Redis's CLIENT LIST; 'unknown' where the provider hides it (BullMQ returns a placeholder). */
async function isRegistered({ queue, name }: Registration): Promise<boolean | 'unknown'> {
  const clients = await queue.getWorkers();
  if (clients.some((c) => c.rawname?.endsWith(`:w:${name}`))) return true;
  return clients.length === 1 && clients[0]!.rawname === undefined ? 'unknown' : false;
}

export interface MetricsServerOptions {
  registry: Registry;
  checks: Record<string, HealthCheck>;
  /** Interface to bind. @defaultValue '127.0.0.1' */
  host?: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Per-check timeout of `/health`, in ms. @defaultValue 3000 */
  healthTimeoutMs?: number;
  /** Host names it is reached by besides localhost, loopback and `host` (METRICS_PUBLIC_NAMES). @defaultValue [] */
  publicNames?: readonly string[];
}

export interface MetricsServer {
  /** e.g. `http://127.0.0.1:9464`. */
  readonly url: string;
  readonly port: number;
  /** Stops listening and ends open connections. Idempotent. */
  close(): Promise<void>;
}

/** Serves `/metrics` and `/health`; resolves once listening. */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const host = options.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    handle(req, res, options).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`internal error: ${(err as Error).message}\n`);
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(listenError('metrics', host, options.port, err)));
    server.listen(options.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** A port in use or not ours to bind is a configuration problem (exit 2), named as such. */
export function listenError(what: string, host: string, port: number, err: Error): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
    return new ConfigError(`cannot serve the ${what} on ${host}:${port}: ${code} (${err.message})`, { cause: err });
  }
  return err;
}

async function handle(req: IncomingMessage, res: ServerResponse, options: MetricsServerOptions): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  // Against DNS rebinding: a web page must not read /metrics and /health under a name of its own.
  const refusal = hostRefusal(req.headers.host, { bind: options.host ?? '127.0.0.1', publicNames: options.publicNames ?? [] }, 'METRICS_PUBLIC_NAMES');
  if (refusal) {
    res.writeHead(refusal.status, { 'content-type': 'text/plain; charset=utf-8' }).end(`refused: ${refusal.reason}\n`);
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  if (path === '/metrics') {
    const body = await options.registry.metrics();
    res.writeHead(200, { 'content-type': options.registry.contentType }).end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  if (path === '/health') {
    const report = await healthReport(options.checks, options.healthTimeoutMs);
    res.writeHead(report.ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : `${JSON.stringify(report)}\n`);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics or /health\n');
}
