/**
 * The dashboard (`docbatch dashboard`): Bull Board over every docbatch queue, the Documents view
 * beside it (`/documents`, `/api/documents`: documents-routes.ts), plus `/metrics` (queue
 * gauges) and `/health`, on one Hono app served by node:http.
 *
 * Why Hono: of Bull Board's adapters it is the lightest on Node (hono and @hono/node-server
 * have no dependencies of their own; express 5 brings some thirty packages, fastify and koa
 * their plugin sets), and its middleware lets one guard cover the board, its API, its static
 * files, the Documents view, /metrics and /health alike.
 *
 * Safety: every request must name this server in its Host header, and a request that changes
 * something must come from the dashboard's own pages (host-guard.ts: DNS rebinding and
 * cross-site form posts), checked before credentials. Binds to loopback unless credentials are
 * set (dashboard-auth.ts); with credentials, every route requires them. `--read-only` turns on
 * Bull Board's readOnlyMode, which its API enforces on the server (405 for retry, clean,
 * remove, pause, add...), not only in the UI, and refuses the Documents view's Retry (405).
 * A Content-Security-Policy keeps the page to this origin (no injected script runs, no font or
 * other request leaves the machine).
 *
 * Bull Board's header links to the Documents view, and shows its per-queue metrics charts
 * (workers keep BullMQ's metrics: queues/connect.ts). Redis going away is logged once, and once
 * when it is back (queues/redis-link.ts).
 */
import { resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serve } from '@hono/node-server';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono } from 'hono';
import type { Queue } from 'bullmq';
import { Registry } from 'prom-client';
import { connectRedis, openInferQueues, openQueue, type TypedQueue } from '../../queues/connect.ts';
import { QUEUES, type QueueName } from '../../queues/contracts.ts';
import { isInferQueueName } from '../../queues/routes.ts';
import { isRedisConnectionError, RedisLink } from '../../queues/redis-link.ts';
import { loadConfig, type Config } from '../config.ts';
import { openBlobStore } from '../store/storage.ts';
import { ChunkReader } from '../store/chunk-index.ts';
import { DocStore } from '../store/docs.ts';
import { Feeder } from '../store/feed.ts';
import type { ReopenParts } from '../store/reopen.ts';
import type { Logger } from './log.ts';
import { documentRoutes } from './documents-routes.ts';
import { WorkerRates } from './worker-rates.ts';
import { queueNotes, registerWriterMetrics } from './queue-notes.ts';
import { pausedQueues, readWriters } from './workers.ts';
import { assertSafeBinding, authorized, challenge, hasCredentials, readAuthorized, type DashboardCredentials } from './dashboard-auth.ts';
import { cutShort, jobTitle, unitData } from './dashboard-format.ts';
import { hostRefusal, writeRefusal, type HostPolicy } from './host-guard.ts';
import { BacklogReader, backlogQueryProblem, registerBacklogMetrics } from './backlog.ts';
import { openQueueCounter, orphanedActive, registerQueueMetrics } from './metrics.ts';
import { withTimeout } from '../timeouts.ts';
import { healthReport, listenError, queuesCheck, redisCheck } from './metrics-server.ts';

export type DashboardConfig = Pick<
  Config,
  | 'redisUrl'
  | 'prefix'
  | 'attempts'
  | 'dashboardHost'
  | 'dashboardPort'
  | 'dashboardPublicNames'
  | 'dashboardUser'
  | 'dashboardPassword'
  | 'dashboardToken'
  | 'dashboardReadOnly'
> &
  // The Documents view reads reports and outputs inside OUT_DIR, results archives in BLOB_DIR
  // (and retries through it), and prices engine time at GPU_HOURLY_USD; without them it says so.
  Partial<Pick<Config, 'outDir' | 'blobDir' | 'gpuHourlyUsd' | 'dashboardReadToken'>>;

export interface Dashboard {
  /** e.g. `http://127.0.0.1:3000` */
  readonly url: string;
  readonly port: number;
  /** Stops listening, ends open connections and closes the Redis connection. Idempotent. */
  close(): Promise<void>;
}

const DESCRIPTIONS: Record<QueueName, string> = {
  infer: 'One job per unit (page, document or chat chunk) of runs naming no model, taken by every GPU worker.',
  write: 'One job per finished document, taken by the writer.',
};

function describe(name: string): string {
  if (name in DESCRIPTIONS) return DESCRIPTIONS[name as QueueName];
  return 'Units of runs naming one model, taken by the GPU workers serving it.';
}

/** What DASHBOARD_READ_TOKEN may GET: figures, never jobs, documents or their data. */
const READ_PATHS = new Set(['/metrics', '/health', '/api/backlog']);

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  // Bull Board's markup carries inline style attributes.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export interface DashboardOptions {
  /** How long one count of the backlog serves every caller (BacklogReader). @defaultValue 5000 */
  backlogTtlMs?: number;
}

/** Starts the dashboard; resolves once it listens. Throws CONFIG_INVALID before listening beyond loopback without credentials. */
export async function startDashboard(config: DashboardConfig, log: Logger, options: DashboardOptions = {}): Promise<Dashboard> {
  const credentials: DashboardCredentials = { user: config.dashboardUser, password: config.dashboardPassword, token: config.dashboardToken, readToken: config.dashboardReadToken };
  assertSafeBinding(config.dashboardHost, credentials);
  const readOnly = config.dashboardReadOnly;

  // Every infer queue in use under the prefix (one per model named by a run), then the write queue.
  const probe = connectRedis(config.redisUrl, 'client');
  const inferQueues = await probe.smembers(`${config.prefix}:queues`).catch(() => [] as string[]);
  probe.disconnect();
  const counter = openQueueCounter(config, [QUEUES.infer, ...inferQueues.sort()]);
  const registry = new Registry();
  registerQueueMetrics(registry, counter.queues);
  const retryQueues = openInferQueues(config, counter.redis);
  const inferQueue = (name: string) => retryQueues.get(name);
  const feeder = new Feeder(counter.redis, config.prefix, inferQueue);
  const backlog = new BacklogReader(feeder, counter.redis, config.prefix, options.backlogTtlMs);
  registerBacklogMetrics(registry, backlog);
  registerWriterMetrics(registry, async () => ({ writers: await readWriters(counter.redis, config.prefix), unwritten: await counter.redis.zcard(`${config.prefix}:active`) }));
  const checks = { redis: redisCheck(counter.redis), queues: queuesCheck(counter.queues) };
  const link = new RedisLink({ url: config.redisUrl, ping: () => counter.redis.ping() }).watch(counter.redis);
  link.on('down', (problem) => log.error({ code: problem.code, err: problem.message }, 'Redis is away: pages and /health answer with errors until it is back'));
  link.on('up', (downMs) => log.info({ downMs }, 'Redis answers again'));

  // The Documents view: records from the index, rates from the workers' heartbeats, retry as `docbatch retry`.
  const store = new DocStore(counter.redis, config.prefix);
  // The blob store (results archives of written documents): a folder, or s3:// with the storage settings.
  const blobs = config.blobDir !== undefined ? openBlobStore({ ...loadConfig({}, {}), ...config, blobDir: config.blobDir }) : null;
  const rates = new WorkerRates(counter.redis, config.prefix);
  rates.start();
  let writeQueue: TypedQueue<'write'> | null = null;
  let reopenParts: ReopenParts | null = null;
  const documents = documentRoutes({
    store,
    blobs,
    outDir: config.outDir ?? null,
    rates,
    notes: async () => {
      const [report, rated, writers, unwritten] = await Promise.all([backlog.read({}), rates.rates(), readWriters(counter.redis, config.prefix), counter.redis.zcard(store.activeKey)]);
      const paused = await pausedQueues(counter.redis, config.prefix, [...report.queues.map((q) => q.queue), QUEUES.write]);
      // Units at killed workers (active, their locks expired) wait as much as those not taken.
      const backlogNow = await Promise.all(report.queues.map(async (q) => ({ queue: q.queue, waiting: q.waiting + (await orphanedActive(counter.redis, config.prefix, q.queue)) })));
      return queueNotes({ backlog: backlogNow, paused, workers: rated.map((r) => r.beat), writers, unwritten });
    },
    writers: () => readWriters(counter.redis, config.prefix),
    reopenParts: () => {
      if (!blobs) return null;
      writeQueue ??= openQueue('write', config, counter.redis);
      reopenParts ??= { store, blobs, chunks: new ChunkReader(blobs), feeder, writeQueue, inferQueue };
      return reopenParts;
    },
    page: { prefix: config.prefix, readOnly },
    gpuHourlyUsd: config.gpuHourlyUsd,
    log,
  });

  const adapterFor = ({ name, queue }: { name: string; queue: Queue }) => {
    const adapter = new BullMQAdapter(queue, { readOnlyMode: readOnly, allowRetries: !readOnly, displayName: name, description: describe(name) });
    adapter.setFormatter('name', jobTitle);
    adapter.setFormatter('data', name !== QUEUES.write ? unitData : (d: unknown) => cutShort(d));
    adapter.setFormatter('returnValue', (v: unknown) => cutShort(v));
    return adapter;
  };
  const adapters = counter.queues.map(adapterFor);
  const board = new HonoAdapter(staticFiles);
  const bull = createBullBoard({
    queues: adapters,
    serverAdapter: board,
    options: {
      uiConfig: {
        boardTitle: 'docbatch',
        environment: { label: `prefix ${config.prefix}${readOnly ? ' · read-only' : ''}`, color: readOnly ? '#7a5b00' : '#2d4a6b', textColor: '#ffffff' },
        sortQueues: false,
        miscLinks: [{ text: 'Documents', url: '/documents' }],
        showMetrics: true,
      },
    },
  });

  // A run naming a model nobody named before makes a new infer queue while the dashboard runs:
  // Bull Board, /metrics and the Documents view's job links show it from the next request
  // (one SMEMBERS a second at most), the write queue staying last. /health and /api/backlog do
  // not wait for it (the backlog reads the queue set itself).
  let lookedAt = -Infinity;
  const lookForQueues = async () => {
    if (performance.now() - lookedAt < 1000) return;
    lookedAt = performance.now();
    const names = (await withTimeout(counter.redis.smembers(`${config.prefix}:queues`), 1000)) ?? [];
    const added = counter.add(names.filter(isInferQueueName).sort());
    if (added.length === 0) return;
    const write = adapters.pop()!;
    adapters.push(...added.map(adapterFor), write);
    bull.removeQueue(write);
    for (const adapter of adapters.slice(-added.length - 1)) bull.addQueue(adapter);
    log.info({ queues: added.map((q) => q.name) }, 'new queues shown');
  };

  const app = new Hono();
  // A route that fails answers in one sentence and logs one JSON line, never a bare 500 with a
  // stack trace on stderr. While Redis is away (logged once by the link above) pages answer 503.
  app.onError((err, c) => {
    const api = c.req.path.startsWith('/api/');
    if (isRedisConnectionError(err)) {
      const message = "Redis does not answer: the dashboard shows nothing until it is back (its log says where it looks)";
      return api ? c.json({ error: message }, 503) : c.text(`${message}\n`, 503);
    }
    log.error({ method: c.req.method, path: c.req.path, err: err.message }, 'dashboard request failed');
    const message = "the dashboard could not answer this request (its log says why)";
    return api ? c.json({ error: message }, 500) : c.text(`${message}\n`, 500);
  });
  app.use('*', async (c, next) => {
    await next();
    if (c.res.headers.get('content-type')?.startsWith('text/html')) {
      // Bull Board's page loads its fonts from a public CDN; an operator's dashboard fetches
      // nothing from outside (the CSP would block it anyway; this avoids even the attempt).
      const html = (await c.res.text()).replace(/<link[^>]*fonts\.googleapis\.com[^>]*>/g, '');
      const headers = new Headers(c.res.headers);
      headers.delete('content-length');
      c.res = new Response(html, { status: c.res.status, headers });
    }
    c.header('Content-Security-Policy', CSP);
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('X-Frame-Options', 'DENY');
    c.header('Referrer-Policy', 'no-referrer');
    if (c.req.path.startsWith('/api/') || c.req.path === '/health' || c.req.path === '/metrics') c.header('Cache-Control', 'no-store');
  });
  const policy: HostPolicy = { bind: config.dashboardHost, publicNames: config.dashboardPublicNames };
  app.use('*', async (c, next) => {
    const header = (name: string) => c.req.header(name);
    const length = header('content-length');
    const refusal =
      hostRefusal(header('host'), policy, 'DASHBOARD_PUBLIC_NAMES') ??
      writeRefusal({
        method: c.req.method,
        host: header('host'),
        origin: header('origin'),
        fetchSite: header('sec-fetch-site'),
        contentType: header('content-type'),
        hasBody: (length !== undefined && length.trim() !== '0') || header('transfer-encoding') !== undefined,
      });
    if (!refusal) return next();
    log.warn({ method: c.req.method, path: c.req.path, host: header('host'), origin: header('origin'), status: refusal.status }, `dashboard refused a request: ${refusal.reason}`);
    return c.text(`refused: ${refusal.reason}\n`, refusal.status);
  });
  if (hasCredentials(credentials)) {
    app.use('*', async (c, next) => {
      const header = c.req.header('authorization');
      if (authorized(header, credentials)) return next();
      if ((c.req.method === 'GET' || c.req.method === 'HEAD') && READ_PATHS.has(c.req.path) && readAuthorized(header, credentials)) return next();
      c.header('WWW-Authenticate', challenge(credentials));
      return c.text('credentials required\n', 401);
    });
  }
  app.use('*', async (c, next) => {
    if (c.req.path !== '/health' && c.req.path !== '/api/backlog') await lookForQueues();
    return next();
  });
  app.get('/metrics', async (c) => c.body(await registry.metrics(), 200, { 'Content-Type': registry.contentType }));
  app.get('/health', async (c) => {
    const report = await healthReport(checks);
    return c.json(report, report.ok ? 200 : 503);
  });
  // What KEDA's metrics-api trigger reads (deploy/kubernetes/base/keda.yaml): units waiting, fed or not.
  app.get('/api/backlog', async (c) => {
    const query = { model: c.req.query('model'), queue: c.req.query('queue') };
    const problem = backlogQueryProblem(query);
    if (problem) return c.json({ error: problem }, 400);
    try {
      return c.json(await backlog.read(query));
    } catch (err) {
      log.warn({ err: err instanceof Error ? err.message : String(err) }, '/api/backlog: cannot read the queues from Redis');
      return c.json({ error: 'cannot read the queues from Redis (the dashboard\'s log says why)' }, 503);
    }
  });
  app.route('/', documents);

  board.setBasePath('/');
  app.route('/', board.registerPlugin());

  const server = serve({ fetch: app.fetch, port: config.dashboardPort, hostname: config.dashboardHost });
  try {
    await new Promise<void>((ok, fail) => {
      if (server.listening) return ok();
      server.once('listening', ok);
      server.once('error', (err: Error) => fail(listenError('dashboard', config.dashboardHost, config.dashboardPort, err)));
    });
  } catch (err) {
    rates.stop();
    link.close();
    await counter.close();
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  const host = config.dashboardHost.includes(':') ? `[${config.dashboardHost}]` : config.dashboardHost;
  const url = `http://${host}:${port}`;
  log.info({ url, prefix: config.prefix, readOnly, auth: hasCredentials(credentials) }, 'dashboard listening');

  let closing: Promise<void> | null = null;
  return {
    url,
    port,
    close() {
      closing ??= (async () => {
        await new Promise<void>((ok) => {
          server.close(() => ok());
          if ('closeAllConnections' in server) server.closeAllConnections();
        });
        rates.stop();
        link.close();
        await Promise.allSettled([retryQueues.close(), writeQueue?.close()]);
        await counter.close();
      })();
      return closing;
    },
  };
}

/**
 * Bull Board's Hono adapter gives serveStatic a root relative to the working directory at start;
 * made absolute here so the UI's files are found whatever the directory later becomes.
 */
const staticFiles: typeof serveStatic = (options = {}) => serveStatic({ ...options, root: resolve(process.cwd(), options.root ?? '.') });
