/**
 * docbatch's Prometheus metrics (prom-client), every name prefixed `docbatch_`.
 *
 * Two sources:
 * - queue gauges (`docbatch_queue_jobs{queue,state}`, `docbatch_redis_up`), read from BullMQ's
 *   getJobCounts when scraped; the dashboard and every worker serve them;
 * - worker families, fed by the worker's events (units settled, requests, OOMs) and read from
 *   its engine when scraped (window, in flight, gate, engine downtime). Metrics know the worker
 *   only as an ObservedWorker: what it tells, not how it is built.
 *
 * Counters are what rates come from: `rate(docbatch_units_completed_total[5m])` is units per
 * second. docs/operations.md lists every family.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { activeListKey, connectRedis, jobLockKey, openQueue } from '../../queues/connect.ts';
import { QUEUES, type UnitJobData } from '../../queues/contracts.ts';
import type { DocMeta, UnitResult } from '../store/types.ts';
import { withDeadline } from '../timeouts.ts';
import { lacksUsage, type TokenCounts } from '../usage.ts';

export const METRIC_PREFIX = 'docbatch_';

/** The job states BullMQ counts, in the order the gauges list them. */
export const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'paused', 'completed', 'failed'] as const;

/** Why a worker pauses its intake (src/infer/worker.ts PauseReason), each a series of `docbatch_worker_intake_paused`. */
const PAUSE_REASONS = ['engine', 'environment', 'budget', 'redis', 'closing'] as const;

/** Where a queue's sample keeps whether it is paused (not a BullMQ state). */
const PAUSED = ' paused';
const ORPHANED = ' orphaned';

/** Request latency buckets in seconds: a page on a busy GPU takes seconds to minutes. */
const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 600];
const RENDER_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Anything that can count its jobs by state (a BullMQ Queue). */
export interface CountableQueue {
  getJobCounts(...states: string[]): Promise<Record<string, number>>;
  /** Paused (Bull Board's Pause, queue.pause()): its workers take nothing, its jobs count as waiting. */
  isPaused?(): Promise<boolean>;
  /** Active jobs whose lock has expired (queueStats.orphanedActive). */
  orphaned?(): Promise<number>;
}

/**
 * Active jobs whose lock has expired: the worker that took them is gone (killed, its machine
 * lost). BullMQ's stalled check, which only a worker of the queue runs, hands them out again; with
 * none running they stay `active` for ever, and an alert that takes active jobs for work being
 * done never fires. Reads at most the first 1000 active jobs (a queue's active jobs are what
 * its workers hold: their windows).
 */
export async function orphanedActive(redis: Redis, prefix: string, queueName: string): Promise<number> {
  const ids = await redis.lrange(activeListKey(prefix, queueName), 0, 999);
  if (ids.length === 0) return 0;
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.exists(jobLockKey(prefix, queueName, id));
  const found = (await pipeline.exec()) ?? [];
  return found.filter(([err, n]) => !err && n === 0).length;
}

export interface QueueMetricsOptions {
  /** A scrape waits at most this long for Redis, then reports `docbatch_redis_up 0`. @defaultValue 2000 */
  timeoutMs?: number;
}

/**
 * Registers `docbatch_queue_jobs{queue,state}` and `docbatch_redis_up` on `registry`. Counts are
 * read once per scrape for all queues (both families share the read).
 */
export function registerQueueMetrics(
  registry: Registry,
  queues: ReadonlyArray<{ name: string; queue: CountableQueue }>,
  options: QueueMetricsOptions = {},
): void {
  const timeoutMs = options.timeoutMs ?? 2000;
  let sample: { at: number; result: Promise<Map<string, Record<string, number>> | null> } | null = null;
  const read = () => {
    // One Redis read serves every family of one scrape (prom-client collects them concurrently).
    if (sample && performance.now() - sample.at < 250) return sample.result;
    const result = withDeadline(
      Promise.all(queues.map(async ({ name, queue }) => [name, { ...(await queue.getJobCounts(...JOB_STATES)), [PAUSED]: queue.isPaused && (await queue.isPaused()) ? 1 : 0, [ORPHANED]: (await queue.orphaned?.()) ?? 0 } as Record<string, number>] as const)).then((pairs) => new Map(pairs)),
      timeoutMs,
    ).catch(() => null);
    sample = { at: performance.now(), result };
    return result;
  };
  new Gauge({
    name: `${METRIC_PREFIX}queue_jobs`,
    help: 'Jobs in each docbatch queue by BullMQ state (read from Redis when scraped).',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      const counts = await read();
      if (!counts) return;
      for (const [queue, byState] of counts) {
        for (const state of JOB_STATES) this.set({ queue, state }, byState[state] ?? 0);
      }
    },
  });
  // Per queue, one count each of what the scrape read (PAUSED, ORPHANED: pseudo-states of `read`).
  const perQueue = (name: string, help: string, field: typeof PAUSED | typeof ORPHANED) =>
    new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      labelNames: ['queue'],
      registers: [registry],
      async collect() {
        this.reset();
        const counts = await read();
        if (!counts) return;
        for (const [queue, byState] of counts) this.set({ queue }, byState[field] ?? 0);
      },
    });
  perQueue('queue_paused', "1 while the queue is paused (Bull Board's Pause, queue.pause()): no worker takes its jobs, which count as waiting.", PAUSED);
  perQueue('queue_jobs_orphaned', 'Active jobs whose lock expired: their worker is gone. A running worker of the queue hands them out again; while none runs they stay active.', ORPHANED);
  new Gauge({
    name: `${METRIC_PREFIX}redis_up`,
    help: '1 when the queue counts could be read from Redis during this scrape, else 0.',
    registers: [registry],
    async collect() {
      this.set((await read()) ? 1 : 0);
    },
  });
}

/** Queues opened only to be counted, on their own connection; `close()` is idempotent. */
export interface QueueCounter {
  /** The queues counted, in order: infer queues, then the write queue. `add` extends it in place. */
  queues: Array<{ name: string; queue: Queue }>;
  redis: Redis;
  /**
   * Opens infer queues not counted yet (a run naming a new model after the process started):
   * they go before the write queue. Returns those it opened.
   */
  add(inferQueues: readonly string[]): Array<{ name: string; queue: Queue }>;
  close(): Promise<void>;
}

/**
 * Opens every docbatch queue for counting. The connection reconnects forever (a long-lived
 * process outlives Redis restarts) but fails a command after one retry, so a scrape during an
 * outage answers `docbatch_redis_up 0` instead of hanging.
 */
export function openQueueCounter(target: { redisUrl: string; prefix: string; attempts: number }, inferQueues: string[] = [QUEUES.infer]): QueueCounter {
  const redis = connectRedis(target.redisUrl, 'worker', { maxRetriesPerRequest: 1 });
  const names = [...new Set([...inferQueues, QUEUES.write])];
  const counted = (queue: Queue, name: string): Queue => Object.assign(queue, { orphaned: () => orphanedActive(redis, target.prefix, name) });
  const opened = names.map((name) => ({ name, queue: counted((name === QUEUES.write ? openQueue('write', target, redis) : openQueue('infer', target, redis, name)) as unknown as Queue, name) }));
  let closing: Promise<void> | null = null;
  return {
    queues: opened,
    redis,
    add(inferQueues) {
      if (closing) return [];
      const added: Array<{ name: string; queue: Queue }> = [];
      for (const name of new Set(inferQueues)) {
        if (name === QUEUES.write || opened.some((o) => o.name === name)) continue;
        added.push({ name, queue: counted(openQueue('infer', target, redis, name) as unknown as Queue, name) });
      }
      opened.splice(opened.findIndex((o) => o.name === QUEUES.write), 0, ...added);
      return added;
    },
    close() {
      closing ??= (async () => {
        await Promise.allSettled(opened.map((o) => o.queue.close()));
        redis.disconnect();
      })();
      return closing;
    },
  };
}

type Cumulative = 'deaths' | 'downMs' | 'busyMs';

/** What metrics read from a worker: its events, and its engine's parts when scraped. */
export interface ObservedEngine {
  /** Its URL without credentials (the `engine` label). */
  readonly label: string;
  readonly window: { snapshot(): { size: number; state: string } };
  readonly gate: { readonly inFlight: number; readonly waiting: number; readonly busyTime: number };
  readonly monitor: {
    readonly isDown: boolean;
    readonly deaths: number;
    /** Milliseconds of outages that ended. */
    readonly downMs: number;
    /** When the outage in progress began (performance.now()), null while up. */
    readonly downSince: number | null;
    on(event: 'down' | 'up', listener: () => void): unknown;
  };
  /** The endpoint's shared rate limits, when it has any. */
  readonly limiter: { readonly waiting: number } | null;
}

export interface ObservedWorker {
  readonly activeUnits: number;
  /** Why intake is paused (engine, environment, budget, redis, closing); empty while it takes work. */
  readonly pauseReasons: readonly string[];
  /**
   * The primary engine (`docbatch_engine_up`, deaths and downtime are its, as they always were;
   * `docbatch_engine_endpoint_*{engine,role}` give each engine's, `docbatch_engine_serving` whether any takes units).
   */
  readonly engine: ObservedEngine;
  /**
   * Every engine it sends to (primary, then fallbacks); `pick()` is the one units go to now.
   * Requests, waits and busy time are counted over all of them: a fallback's are this worker's too.
   */
  readonly engines: { readonly all: readonly ObservedEngine[]; pick(): ObservedEngine | null };
  on(event: 'unit:settled', listener: (data: UnitJobData, meta: DocMeta, result: UnitResult) => void): unknown;
  on(event: 'request', listener: (ms: number, ok: boolean) => void): unknown;
  on(event: 'usage', listener: (model: string, usage: TokenCounts) => void): unknown;
  on(event: 'oom', listener: () => void): unknown;
}

export interface WorkerMetricsOptions {
  /** Registry to register on. @defaultValue a new Registry */
  registry?: Registry;
  /** Also export Node's process metrics (`docbatch_process_*`, `docbatch_nodejs_*`). @defaultValue true */
  processMetrics?: boolean;
  /** Labels put on every series (e.g. `{ worker: 'gpu0' }`). @defaultValue none */
  labels?: Record<string, string>;
}

/** The kind of a unit, for labels: page, document, chunk, conversation or reduce. */
function unitKind(data: UnitJobData, meta: DocMeta): string {
  if (data.reduce) return 'reduce';
  return meta.task?.unit ?? (meta.kind === 'chat' ? 'chunk' : 'page');
}

/**
 * The families of one GPU worker. Create it, then `attach(worker)`: it subscribes to the
 * worker's events and reads its engine when scraped.
 */
export class WorkerMetrics {
  readonly registry: Registry;
  private worker: ObservedWorker | null = null;
  private downSince: number | null = null;
  private downMsClosed = 0;
  private readonly reported: Record<Cumulative, number> = { deaths: 0, downMs: 0, busyMs: 0 };
  private readonly families: {
    completed: Counter;
    failed: Counter;
    promptTokens: Counter;
    completionTokens: Counter;
    withoutUsage: Counter;
    requestSeconds: Histogram;
    renderSeconds: Histogram;
    ooms: Counter;
  };

  constructor(options: WorkerMetricsOptions = {}) {
    const registry = (this.registry = options.registry ?? new Registry());
    if (options.labels) registry.setDefaultLabels(options.labels);
    if (options.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
    const registers = [registry];
    const p = METRIC_PREFIX;
    const self = this;

    this.families = {
      completed: new Counter({ name: `${p}units_completed_total`, help: 'Units (pages, chunks) whose result was recorded, by kind and the model that answered.', labelNames: ['kind', 'model'], registers }),
      failed: new Counter({ name: `${p}units_failed_total`, help: 'Units that failed for good, by error code (src/errors.ts).', labelNames: ['kind', 'code'], registers }),
      promptTokens: new Counter({ name: `${p}prompt_tokens_total`, help: 'Prompt tokens the engine reported to this worker (every answer: those rejected, of failed units and of attempts tried again too), by model.', labelNames: ['model'], registers }),
      completionTokens: new Counter({ name: `${p}completion_tokens_total`, help: 'Completion tokens the engine reported to this worker (every answer), by model.', labelNames: ['model'], registers }),
      withoutUsage: new Counter({ name: `${p}units_without_usage_total`, help: 'Recorded units whose tokens the engine did not (all) report: the token counters leave them out (a lower bound), by model.', labelNames: ['model'], registers }),
      requestSeconds: new Histogram({ name: `${p}request_duration_seconds`, help: 'Engine request latency, from send to answer or failure.', labelNames: ['outcome'], buckets: LATENCY_BUCKETS, registers }),
      renderSeconds: new Histogram({ name: `${p}render_duration_seconds`, help: 'Time to render a page to an image (recorded page units).', buckets: RENDER_BUCKETS, registers }),
      ooms: new Counter({ name: `${p}engine_oom_total`, help: 'Requests that failed because the engine ran out of GPU memory (an engine death counts).', registers }),
    };

    const gauge = (name: string, help: string, read: (w: ObservedWorker) => number) =>
      new Gauge({
        name: `${p}${name}`,
        help,
        registers,
        collect() {
          if (self.worker) this.set(read(self.worker));
        },
      });
    const using = (w: ObservedWorker) => w.engines.pick() ?? w.engine;
    const sum = (w: ObservedWorker, read: (e: ObservedEngine) => number) => w.engines.all.reduce((n, e) => n + read(e), 0);
    gauge('worker_window', 'Requests this worker may have in flight at the engine it sends to now (the adaptive window; a fallback while it has taken over).', (w) => using(w).window.snapshot().size);
    gauge('worker_in_flight', 'Requests of this worker at its engines now (fallbacks included).', (w) => sum(w, (e) => e.gate.inFlight));
    gauge('worker_gate_waiting', 'Prepared units waiting at the gate for a window slot.', (w) => sum(w, (e) => e.gate.waiting));
    gauge('worker_rate_waiting', "Units waiting for the endpoint's rate limit (ENGINE_RPM, ENGINE_TPM), holding no window slot.", (w) => sum(w, (e) => e.limiter?.waiting ?? 0));
    gauge('worker_active_units', 'Units this worker holds (preparing, waiting or in flight).', (w) => w.activeUnits);
    gauge('engine_up', 'The primary engine (ENGINE_URL): 1 while it answers, 0 while this worker waits for it to come back (a fallback may serve meanwhile: docbatch_engine_serving).', (w) => (w.engine.monitor.isDown ? 0 : 1));
    // With fallback engines (ENGINE_FALLBACK_URLS) the primary being down is not the worker
    // being stopped: what an alert wants is whether any engine takes its units now.
    gauge('engine_serving', '1 while an engine (the primary, or a fallback that has taken over) takes this worker\'s units, 0 while none does and its units wait.', (w) => (w.engines.pick() ? 1 : 0));
    const roleOf = (w: ObservedWorker, e: ObservedEngine) => (e === w.engine ? 'primary' : 'fallback');
    const each = (w: ObservedWorker) => w.engines.all.map((e) => ({ e, labels: { engine: e.label, role: roleOf(w, e) } }));
    new Gauge({
      name: `${p}engine_endpoint_up`,
      help: 'Each engine this worker sends to (role primary or fallback): 1 while it answers, 0 while it is seen down.',
      labelNames: ['engine', 'role'],
      registers,
      collect() {
        if (self.worker) for (const { e, labels } of each(self.worker)) this.set(labels, e.monitor.isDown ? 0 : 1);
      },
    });
    // Per engine, monotonic: what grew since the last scrape is added (as `cumulative` below).
    const perEngine = (name: string, help: string, read: (e: ObservedEngine) => number, scale = 1) => {
      const reported = new Map<string, number>();
      return new Counter({
        name: `${p}${name}`,
        help,
        labelNames: ['engine', 'role'],
        registers,
        collect() {
          if (!self.worker) return;
          for (const { e, labels } of each(self.worker)) {
            const now = read(e);
            const delta = now - (reported.get(labels.engine) ?? 0);
            // Seen at 0 too, so an engine that never failed shows its series.
            this.inc(labels, delta > 0 ? delta * scale : 0);
            if (delta > 0) reported.set(labels.engine, now);
          }
        },
      });
    };
    perEngine('engine_endpoint_deaths_total', 'Times this worker found each of its engines dead (process gone or EngineDeadError).', (e) => e.monitor.deaths);
    perEngine('engine_endpoint_down_seconds_total', 'Seconds each of its engines was seen down (an outage in progress included).', (e) => e.monitor.downMs + (e.monitor.downSince !== null ? performance.now() - e.monitor.downSince : 0), 1 / 1000);
    new Gauge({
      name: `${p}worker_intake_paused`,
      help: 'Why this worker takes no units now (1 for each reason in force): engine (no engine to send to), environment (a fault of its own), budget (BUDGET_USD spent), redis (full), closing.',
      labelNames: ['reason'],
      registers,
      collect() {
        if (!self.worker) return;
        const reasons = self.worker.pauseReasons;
        for (const r of PAUSE_REASONS) this.set({ reason: r }, reasons.includes(r) ? 1 : 0);
      },
    });
    new Gauge({
      name: `${p}worker_window_state`,
      help: 'The window controller state (1 for the current one): probing, steady, backoff, paused.',
      labelNames: ['state'],
      registers,
      collect() {
        if (!self.worker) return;
        const state = using(self.worker).window.snapshot().state;
        for (const s of ['probing', 'steady', 'backoff', 'paused']) this.set({ state: s }, s === state ? 1 : 0);
      },
    });
    // Cumulative values kept by the worker's parts become counters by adding what grew since the
    // last scrape, so they stay monotonic and `rate()` works on them.
    const cumulative = (name: string, help: string, key: Cumulative, read: () => number, scale = 1) =>
      new Counter({
        name: `${p}${name}`,
        help,
        registers,
        collect() {
          const now = read();
          const delta = now - self.reported[key];
          if (delta > 0) {
            this.inc(delta * scale);
            self.reported[key] = now;
          }
        },
      });
    cumulative('engine_deaths_total', 'Times this worker found its engine dead (process gone or EngineDeadError).', 'deaths', () => this.worker?.engine.monitor.deaths ?? 0);
    cumulative('engine_down_seconds_total', 'Seconds this worker spent waiting for its engine to come back (includes an outage in progress).', 'downMs', () => this.downMs(), 1 / 1000);
    cumulative('engine_busy_seconds_total', 'Seconds during which this worker had at least one request at an engine (each of its engines counted, fallbacks included).', 'busyMs', () => (this.worker ? sum(this.worker, (e) => e.gate.busyTime) : 0), 1 / 1000);
  }

  /** Subscribes to the worker's events and lets the scrape-time families read it; call once. */
  attach(worker: ObservedWorker): void {
    this.worker = worker;
    const f = this.families;
    worker.on('unit:settled', (data, meta, result) => {
      const kind = unitKind(data, meta);
      if (result.ok) {
        f.completed.inc({ kind, model: result.model });
        if (result.renderMs !== undefined) f.renderSeconds.observe(result.renderMs / 1000);
      } else {
        f.failed.inc({ kind, code: result.code });
      }
      if (lacksUsage(result)) f.withoutUsage.inc({ model: result.ok ? result.model : (meta.model ?? '') });
    });
    // Tokens as each answer comes: those of answers rejected, of failed units, of attempts that
    // did not settle count too, as the engine processed them. A count the engine did not report
    // is left out, not counted as 0 (src/usage.ts).
    worker.on('usage', (model, usage) => {
      if (usage.promptTokens !== null) f.promptTokens.inc({ model }, usage.promptTokens);
      if (usage.completionTokens !== null) f.completionTokens.inc({ model }, usage.completionTokens);
    });
    worker.on('request', (ms, ok) => f.requestSeconds.observe({ outcome: ok ? 'ok' : 'error' }, ms / 1000));
    worker.on('oom', () => f.ooms.inc());
    worker.engine.monitor.on('down', () => {
      this.downSince ??= performance.now();
    });
    worker.engine.monitor.on('up', () => {
      if (this.downSince !== null) this.downMsClosed += performance.now() - this.downSince;
      this.downSince = null;
    });
  }

  /** Downtime so far, counting an outage that is still going on. */
  private downMs(): number {
    return this.downMsClosed + (this.downSince !== null ? performance.now() - this.downSince : 0);
  }

  /** The exposition text (what `/metrics` answers). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
