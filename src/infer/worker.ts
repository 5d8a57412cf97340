/**
 * The GPU worker (its parts are built from config by worker-parts.ts): checks its environment, and
 * runs one BullMQ worker per infer queue it serves (the shared queue, and the queue of each model
 * its engine serves), all feeding one engine through one gate. It owns how intake pauses and
 * how it stops.
 *
 * Intake: each BullMQ worker keeps `window + batchSize` units active; units beyond the window
 * are prepared (rendered) ahead and wait at the gate, so the engine never waits for the CPU.
 * Intake pauses for any of: the engine down, Redis full (REDIS_FULL), a fault of this worker's environment (its blob
 * store, its model), the budget spent, or stopping. While it runs, the worker keeps its queues'
 * wait lists topped up from the fair feeding round, and publishes a heartbeat (`{p}:workers`).
 *
 * Answers that come back while Redis is full are held until it has room (hold.ts).
 *
 * Stopping (`close`): stop intake, let in-flight units finish until the deadline, then abort the
 * rest (they go back to `wait` without using an attempt; held answers are dropped) and close.
 * `close()` is idempotent; a second call with `force` skips the wait.
 */
import { EventEmitter } from 'node:events';
import { WaitingError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { openWorker, type TypedWorker } from '../../queues/connect.ts';
import { isRedisFull, RedisLink, redisFullProblem } from '../../queues/redis-link.ts';
import { MAX_STALLED_COUNT, type UnitJobData, type UnitJobName, type UnitJobResult } from '../../queues/contracts.ts';
import { inferQueueFor, SHARED_INFER_QUEUE } from '../../queues/routes.ts';
import type { Config } from '../config.ts';
import { DocbatchError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import { RenderPool } from '../render/pool.ts';
import type { DocStore } from '../store/docs.ts';
import { settleUnit, type SettleParts } from '../store/settle.ts';
import type { DocMeta, UnitResult } from '../store/types.ts';
import { withTimeout } from '../timeouts.ts';
import type { TokenCounts } from '../usage.ts';
import type { Engine, EngineSet } from './engine.ts';
import { checkBlobs, checkEngine, checkRedis, type EngineFacts } from './environment.ts';
import { AnswerHold } from './hold.ts';
import { goneJob, goneWords, LostLocks, lostLockJob } from './lost-locks.ts';
import { UnitProcessor } from './processor.ts';
import { UnitPreparer } from './units.ts';
import type { InferWorkerParts } from './worker-parts.ts';

/** What a worker tells whoever listens (metrics, tests): typed, like graphile-worker's events. */
export interface WorkerEvents {
  'unit:settled': [data: UnitJobData, meta: DocMeta, result: UnitResult];
  request: [ms: number, ok: boolean];
  /** Tokens the engine reported for one answer (every answer, those not kept included), by the model that gave it. */
  usage: [model: string, usage: TokenCounts];
  oom: [];
  'intake:paused': [reasons: string[]];
  'intake:resumed': [];
  /** No work found for `exitWhenIdle`: the worker is stopping by itself. */
  idle: [];
}

export type PauseReason = 'engine' | 'environment' | 'budget' | 'redis' | 'closing';

export class InferWorker extends EventEmitter<WorkerEvents> {
  readonly config: Config;
  readonly store: DocStore;
  /** The primary engine (metrics and health read it). */
  readonly engine: Engine;
  readonly engines: EngineSet;
  private readonly parts: InferWorkerParts;
  private readonly log: Logger;
  private readonly processor: UnitProcessor;
  /** Answers that came back while Redis is full, until they can be recorded. */
  private readonly hold: AnswerHold;
  private readonly bulls = new Map<string, TypedWorker<'infer'>>();
  private pool: RenderPool | null = null;
  private facts: EngineFacts | null = null;
  private active = 0;
  private lastBusyAt = performance.now();
  private idle: Array<() => void> = [];
  private closing: Promise<void> | null = null;
  private forced = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly paused = new Map<PauseReason, string>();
  private environmentError: DocbatchError | null = null;
  /** Redis away or back: said once per change, not once per reconnect attempt. */
  private readonly link: RedisLink;
  /** Units settled by this worker since it started, by kind (the heartbeat carries them for the dashboard's rates). */
  private readonly settledByKind: Record<string, number> = {};
  private readonly startedAt = Date.now();
  /** Units that lost their locks, said in bursts (lost-locks.ts). */
  private readonly lostLocks: LostLocks;
  private readonly goneJobs: LostLocks;

  constructor(parts: InferWorkerParts) {
    super();
    this.parts = parts;
    this.config = parts.config;
    this.log = parts.log;
    this.store = parts.store;
    this.engines = parts.engines;
    this.engine = parts.engines.primary;
    this.lostLocks = new LostLocks(this.log);
    this.goneJobs = new LostLocks(this.log, goneWords);
    this.link = new RedisLink({ url: parts.config.redisUrl, ping: () => parts.redis.ping() }).watch(parts.redis).watch(parts.bullRedis);
    this.link.on('down', (problem) => this.log.error({ code: problem.code, err: problem.message }, 'Redis is away: the worker waits for it, and records the units in flight once it answers'));
    this.link.on('up', (downMs) => this.log.info({ downMs }, 'Redis answers again'));
    this.on('unit:settled', (data, meta) => {
      const kind = data.reduce ? 'summaries' : meta.kind === 'chat' ? (meta.task.unit === 'conversation' ? 'conversations' : 'chunks') : meta.task.unit === 'document' ? 'documents' : 'pages';
      this.settledByKind[kind] = (this.settledByKind[kind] ?? 0) + 1;
    });
    const settle: SettleParts = { store: parts.store, writeQueue: parts.writeQueue, inferQueue: parts.inferQueue, chunks: parts.chunks };
    const { config } = parts;
    this.hold = new AnswerHold({ log: this.log, redisUrl: config.redisUrl, onFull: (err) => this.onRedisFull(err) });
    this.processor = new UnitProcessor({
      store: parts.store,
      blobs: parts.blobs,
      settle,
      reopen: { ...settle, blobs: parts.blobs, feeder: parts.feeder },
      preparer: new UnitPreparer({
        blobs: parts.blobs,
        chunks: parts.chunks,
        pool: () => this.renderPool(),
        results: (docId, gen, unit) => parts.store.unitResult(docId, gen, unit),
        options: {
          imageSize: config.imageSize,
          imageFormat: config.imageFormat,
          imageQuality: config.imageQuality,
          pageMaxTokens: config.pageMaxTokens,
          chatMaxTokens: config.chatMaxTokens,
          schemaInPrompt: config.schemaInPrompt,
        },
      }),
      hold: this.hold,
      dispatch: {
        engines: parts.engines,
        releaseAfterMs: config.engineReleaseMs,
        retryAfterMaxMs: config.engineRetryAfterMaxMs,
        oomSizes: [1024, 768, 512].filter((s) => s < config.imageSize),
        log: this.log,
        onOom: () => this.emit('oom'),
        onRequest: (ms, ok) => this.emit('request', ms, ok),
        onUsage: (model, usage) => this.emit('usage', model, usage),
      },
      workerName: config.workerName,
      log: this.log,
      acceptsImages: () => this.facts?.acceptsImages ?? null,
      onEnvironmentError: (err) => this.onEnvironmentError(err),
      onSettled: (data, meta, result) => this.emit('unit:settled', data, meta, result),
    });
    for (const engine of parts.engines.all) {
      engine.monitor.on('change', () => this.follow());
      engine.monitor.on('down', () => this.followEngines());
      engine.monitor.on('up', () => this.followEngines());
    }
  }

  /**
   * Intake pauses while no engine may be used: the primary is down and no fallback may take over
   * (none configured, none up, or the primary's grace not over yet).
   */
  private followEngines(): void {
    const usable = this.engines.pick();
    if (usable) this.resume('engine');
    else this.pause('engine', `engine ${this.engine.label} down`);
  }

  /** Checks the environment (refusing to start with WORKER_UNFIT), then starts taking units. */
  async start(signal?: AbortSignal): Promise<void> {
    const { config, redis, blobs, engines } = this.parts;
    const engine = engines.primary;
    await checkRedis(redis);
    await checkBlobs(blobs, this.log);
    this.facts = await checkEngine({ redis, blobs, client: engine.client, model: config.model ?? null, textOnly: config.textOnly, log: this.log, limiter: engine.limiter }, config.engineStartTimeoutMs, signal);
    engines.start();
    for (const fallback of engines.fallbacks) {
      void fallback.client.models(AbortSignal.timeout(10_000)).then(
        (models) => this.log.info({ engine: fallback.label, models: models.map((m) => m.id) }, 'fallback engine answers'),
        (err: Error) => this.log.warn({ engine: fallback.label, err: err.message }, 'fallback engine does not answer now'),
      );
    }
    // Renderers start now, not when the first page arrives.
    if (this.facts.acceptsImages !== false) void this.renderPool().warm().catch((err: Error) => this.log.warn({ err: err.message }, 'render pool did not warm up'));
    for (const queue of this.queueNames()) this.openBull(queue);
    this.every(250, () => this.feed());
    if (engines.fallbacks.length > 0) this.every(1000, () => this.followEngines());
    this.every(5000, () => this.heartbeat());
    if (config.budgetUsd !== undefined) this.every(2000, () => this.checkBudget());
    if (config.exitWhenIdleS !== undefined) this.every(1000, () => this.checkIdle());
    // Like every later step (`every`): a failure here (Redis full, a command refused) is logged,
    // never an unhandled rejection that takes the process down.
    for (const step of [() => this.feed(), () => this.heartbeat()]) void step().catch((err: Error) => this.log.debug({ err: err.message }, 'background step failed'));
    if (config.budgetUsd !== undefined) void this.checkBudget().catch(() => undefined);
    this.log.info({ engine: engine.label, model: this.facts.model, images: this.facts.acceptsImages, queues: [...this.bulls.keys()], window: engine.window.size, batchSize: config.batchSize }, 'worker started');
  }

  /** The queues this worker takes units from: the shared one (unless text-only) and one per served model. */
  queueNames(): string[] {
    const names = new Set<string>();
    if (this.facts?.acceptsImages !== false) names.add(SHARED_INFER_QUEUE);
    const models = this.config.model ? [this.config.model] : (this.facts?.served ?? []).map((m) => m.id);
    for (const model of models) names.add(inferQueueFor(model));
    return [...names];
  }

  private openBull(queue: string): void {
    const { config, bullRedis } = this.parts;
    const bull = openWorker(
      'infer',
      (job, token, signal) => this.run(job, token, signal, queue),
      config,
      bullRedis,
      {
        name: config.workerName,
        autorun: false,
        concurrency: this.concurrency(),
        lockDuration: config.lockDurationMs,
        stalledInterval: config.stalledIntervalMs,
        maxStalledCount: MAX_STALLED_COUNT,
        link: this.link,
      },
      queue,
    );
    bull.on('lockRenewalFailed', (ids) => {
      for (const id of ids) {
        this.lostLocks.note(id);
        bull.cancelJob(id, 'lock lost');
      }
    });
    bull.on('failed', (job, err) => void this.onBullFailed(job, err));
    bull.on('error', (err) => {
      const lost = lostLockJob(err.message);
      const gone = lost ? undefined : goneJob(err.message);
      if (isRedisFull(err)) this.onRedisFull(err);
      else if (lost) this.lostLocks.note(lost, err.message);
      else if (gone) this.goneJobs.note(gone, err.message);
      else this.log.error({ err: err.message, queue }, 'queue error (retrying)');
    });
    this.bulls.set(queue, bull);
    if (this.paused.size > 0) void bull.pause(true);
    void bull.run().catch((err: Error) => this.log.error({ err: err.message, queue }, 'worker loop ended with an error'));
  }

  get activeUnits(): number {
    return this.active;
  }

  /** The connection for docbatch's own keys (health checks read it). */
  get redis(): Redis {
    return this.parts.redis;
  }

  /** Why intake is paused (empty while it runs). */
  get pauseReasons(): string[] {
    return [...this.paused.keys()];
  }

  /** The environment fault that stopped intake, if any. */
  get unhealthy(): DocbatchError | null {
    return this.environmentError;
  }

  /** The BullMQ loops' state, for `/health`. */
  get loop(): { running: boolean; paused: boolean; closing: boolean } {
    const bulls = [...this.bulls.values()];
    return { running: bulls.length > 0 && bulls.every((b) => b.isRunning()), paused: bulls.some((b) => b.isPaused()), closing: this.closing !== null };
  }

  private concurrency(): number {
    const window = this.engines.all.reduce((max, e) => Math.max(max, e.window.size), 0);
    return Math.max(1, window + this.config.batchSize);
  }

  /** Keeps BullMQ's intake in step with the window, and lets waiters through. */
  private follow(): void {
    const wanted = this.concurrency();
    if (!this.closing) for (const bull of this.bulls.values()) if (bull.concurrency !== wanted) bull.concurrency = wanted;
    for (const engine of this.engines.all) engine.gate.notify();
  }

  private pause(reason: PauseReason, why: string): void {
    const was = this.paused.size;
    this.paused.set(reason, why);
    if (was === 0) {
      for (const bull of this.bulls.values()) void bull.pause(true);
      this.emit('intake:paused', this.pauseReasons);
    }
    if (reason !== 'closing') void this.heartbeat().catch(() => undefined);
  }

  private resume(reason: PauseReason): void {
    if (!this.paused.delete(reason) || this.paused.size > 0 || this.closing) return;
    for (const bull of this.bulls.values()) bull.resume();
    this.emit('intake:resumed');
    void this.heartbeat().catch(() => undefined);
  }

  /** A fault of this worker's own: stop taking work, recheck every few seconds, resume when it passes. */
  private onEnvironmentError(err: DocbatchError): void {
    if (this.environmentError) return;
    this.environmentError = err;
    this.log.error({ code: err.code, err: err.message }, 'this worker cannot do its work: intake stopped, units handed back; rechecking every 5 s');
    this.pause('environment', err.message);
    const recheck = async () => {
      if (this.closing) return;
      try {
        await checkBlobs(this.parts.blobs);
        await this.parts.blobs.check();
        const facts = await checkEngine({ redis: this.parts.redis, blobs: this.parts.blobs, client: this.engine.client, model: this.config.model ?? null, textOnly: this.config.textOnly, log: this.log }, 0);
        this.facts = facts;
        this.environmentError = null;
        this.log.info('environment checks pass again: taking work');
        this.resume('environment');
      } catch (again) {
        this.log.debug({ err: (again as Error).message }, 'environment still failing');
        this.once5s(recheck);
      }
    };
    this.once5s(recheck);
  }

  /**
   * Redis at its maxmemory refuses BullMQ's scripts, and BullMQ asks again at once (thousands of
   * errors a second): stop intake (`/health` fails), say it once, and take work again once a
   * write (the heartbeat) goes through.
   */
  private onRedisFull(err: Error): void {
    if (this.paused.has('redis') || this.closing) return;
    const problem = redisFullProblem(err, this.config.redisUrl)!;
    this.log.error({ code: problem.code, err: problem.message }, 'Redis is full: intake stopped; rechecking every 5 s');
    this.pause('redis', problem.message);
    const recheck = async () => {
      if (this.closing) return;
      try {
        await this.heartbeat();
        this.log.info('Redis accepts writes again: taking work');
        this.resume('redis');
      } catch (again) {
        this.log.debug({ err: (again as Error).message }, 'Redis still refuses writes');
        this.once5s(recheck);
      }
    };
    this.once5s(recheck);
  }

  private once5s(fn: () => Promise<void>): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      void fn();
    }, 5000);
    t.unref();
    this.timers.add(t);
  }

  private every(ms: number, fn: () => Promise<void> | void): void {
    const t = setInterval(() => {
      if (!this.closing) void Promise.resolve(fn()).catch((err: Error) => this.log.debug({ err: err.message }, 'background step failed'));
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  /** Tops up the wait list of every queue this worker serves, from the fair round. */
  private async feed(): Promise<void> {
    if (this.paused.size > 0) return;
    for (const queue of this.bulls.keys()) {
      await this.parts.feeder.topUp(queue, Math.max(this.config.feedDepth, this.concurrency()));
    }
  }

  /** `{p}:workers`: what `status` and the dashboard say about workers (their engine down, their health). */
  private async heartbeat(): Promise<void> {
    const state = {
      at: Date.now(),
      engine: this.engine.label,
      model: this.facts?.model ?? null,
      engineDown: this.engine.monitor.isDown,
      ...(this.engines.fallbacks.length > 0 ? { fallbacks: this.engines.fallbacks.map((e) => ({ engine: e.label, down: e.monitor.isDown })), sendingTo: this.engines.pick()?.label ?? null } : {}),
      paused: this.pauseReasons,
      unhealthy: this.environmentError ? { code: this.environmentError.code, message: this.environmentError.message } : null,
      // The engine units go to now (a fallback while it has taken over), and requests at any of them.
      window: (this.engines.pick() ?? this.engine).window.size,
      inFlight: this.engines.all.reduce((n, e) => n + e.gate.inFlight, 0),
      active: this.active,
      queues: [...this.bulls.keys()],
      startedAt: this.startedAt,
      settled: this.settledByKind,
    };
    await this.parts.redis.hset(`${this.config.prefix}:workers`, this.config.workerName, JSON.stringify(state));
  }

  /**
   * BUDGET_USD: once the engine time spent under this prefix (all workers, all documents) costs
   * the budget at GPU_HOURLY_USD, stop taking units (those in flight finish) and say so.
   */
  private async checkBudget(): Promise<void> {
    const { budgetUsd, gpuHourlyUsd } = this.config;
    if (budgetUsd === undefined || gpuHourlyUsd === undefined) return;
    const spent = ((await this.store.spentEngineMs()) / 3_600_000) * gpuHourlyUsd;
    if (spent >= budgetUsd && !this.paused.has('budget')) {
      this.pause('budget', 'budget reached');
      this.log.warn({ spentUsd: Number(spent.toFixed(4)), budgetUsd }, 'budget reached: intake paused (raise BUDGET_USD and restart the worker to go on)');
    }
  }

  /** True while intake is paused because BUDGET_USD is spent. */
  get overBudget(): boolean {
    return this.paused.has('budget');
  }

  /** --exit-when-idle: no unit for that long, nothing waiting in its queues or their rounds. */
  private async checkIdle(): Promise<void> {
    // Paused only because its engines are down is no work: an idle worker sees its engines die
    // (the end of a run); whatever waits for them is counted in the queues below.
    if (this.active > 0 || [...this.paused.keys()].some((reason) => reason !== 'engine')) {
      this.lastBusyAt = performance.now();
      return;
    }
    if (performance.now() - this.lastBusyAt < this.config.exitWhenIdleS! * 1000) return;
    for (const queue of this.bulls.keys()) {
      if ((await this.parts.feeder.waiting(queue)) > 0 || (await this.parts.feeder.waitingDocs(queue)) > 0) {
        this.lastBusyAt = performance.now();
        return;
      }
    }
    this.log.info({ idleS: this.config.exitWhenIdleS }, 'no work for the idle limit: stopping');
    this.emit('idle');
  }

  private renderPool(): RenderPool {
    this.pool ??= new RenderPool({
      size: this.config.renderers,
      pageTimeoutMs: this.config.renderTimeoutMs,
      renderer: this.config.renderer,
      maxTotalRssMb: this.config.renderMemoryMb,
    });
    return this.pool;
  }

  private async run(job: Job<UnitJobData, UnitJobResult, UnitJobName>, token: string | undefined, signal: AbortSignal | undefined, queue: string): Promise<UnitJobResult> {
    this.active++;
    this.lastBusyAt = performance.now();
    // ATTEMPTS is this worker's: the job carries whatever its feeder's config said, and BullMQ
    // decides retry-or-fail from the job object in this process (as does the processor's "last
    // attempt"), so the worker that takes a unit decides with its own setting.
    job.opts.attempts = this.config.attempts;
    try {
      if (this.closing && token) {
        // Fetched as intake was stopping: hand it straight back, without using an attempt.
        await job.moveToWait(token);
        throw new WaitingError();
      }
      return await this.processor.process(job, token, signal, queue);
    } catch (err) {
      if (err instanceof WaitingError) throw err;
      if (signal?.aborted && signal.reason === 'shutdown' && token) {
        // Back to wait for another worker, without using one of the unit's attempts.
        await job.moveToWait(token);
        throw new WaitingError();
      }
      throw err;
    } finally {
      this.active--;
      this.lastBusyAt = performance.now();
      if (this.active === 0) for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  /** BullMQ failed a unit without our processor deciding it (stalled too often): settle it. */
  private async onBullFailed(job: Job<UnitJobData> | undefined, err: Error): Promise<void> {
    if (!job || !/stalled|started more than/i.test(err.message)) return;
    try {
      const record = await this.store.get(job.data.docId);
      if (!record || record.gen !== job.data.gen) return;
      const settle: SettleParts = { store: this.store, writeQueue: this.parts.writeQueue, inferQueue: this.parts.inferQueue, chunks: this.parts.chunks };
      const result: UnitResult = { ok: false, code: 'UNIT_STALLED', message: `abandoned by crashed workers too often (${err.message})`, worker: this.config.workerName };
      const outcome = await settleUnit(settle, { data: job.data, meta: record.meta, result });
      // Counted like any unit that failed for good (docbatch_units_failed_total).
      if (outcome.outcome === 'recorded') this.emit('unit:settled', job.data, record.meta, result);
    } catch (e) {
      this.log.error({ err: (e as Error).message }, 'could not settle a stalled unit; the reconciler will');
    }
  }

  /**
   * Stops intake, waits up to `deadlineMs` for in-flight units, then aborts the rest back to the
   * queue. A second call (or `force`) aborts at once.
   */
  close(options: { deadlineMs?: number; force?: boolean } = {}): Promise<void> {
    if (options.force) this.forceAbort();
    if (this.closing) return this.closing;
    const deadlineMs = options.deadlineMs ?? this.config.shutdownTimeoutMs;
    this.closing = (async () => {
      const errors: unknown[] = [];
      const step = async (what: string, fn: () => Promise<unknown> | unknown) => {
        try {
          await fn();
        } catch (err) {
          errors.push(new Error(`${what}: ${(err as Error).message}`, { cause: err }));
        }
      };
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      this.link.close();
      this.paused.set('closing', 'stopping');
      // Said at once: status and the dashboard showed a draining worker as taking work.
      void withTimeout(this.heartbeat(), 1000).catch(() => undefined);
      this.log.info({ active: this.active, deadlineMs }, 'stopping: no new units; finishing those in flight');
      await step('pause intake', () => Promise.all([...this.bulls.values()].map((b) => withTimeout(b.pause(true), 2000))));
      if (this.active > 0 && !this.forced) {
        const finished = await Promise.race([
          new Promise<boolean>((r) => this.idle.push(() => r(true))),
          new Promise<boolean>((r) => setTimeout(() => r(false), deadlineMs).unref()),
        ]);
        if (!finished) {
          this.log.warn({ active: this.active }, 'deadline passed; returning unfinished units to the queue');
          this.forceAbort();
        }
      }
      // Redis away: the units aborted cannot hand themselves back (their locks expire; they go
      // back at the stalled check), and BullMQ's graceful close (QUIT, its fetch loop's end)
      // waits for a Redis that does not answer; forced, it disconnects. Nothing is lost.
      const away = this.link.isDown || this.parts.redis.status !== 'ready' || this.parts.bullRedis.status !== 'ready';
      if (this.active > 0 && !away) {
        await Promise.race([new Promise<void>((r) => this.idle.push(r)), new Promise((r) => setTimeout(r, 5000).unref())]);
      }
      await step('close workers', () => Promise.all([...this.bulls.values()].map((b) => withTimeout(b.close(this.active > 0 || away), 5000))));
      await step('close render pool', () => this.pool?.close());
      await step('close engines', () => this.engines.close());
      if (!away) await step('forget heartbeat', () => withTimeout(this.parts.redis.hdel(`${this.config.prefix}:workers`, this.config.workerName), 1000));
      await step('close write queue', () => withTimeout(this.parts.writeQueue.close(), 2000));
      await step('close infer queues', () => this.parts.closeQueues());
      this.parts.redis.disconnect();
      this.parts.bullRedis.disconnect();
      this.lostLocks.say(); // before 'worker stopped', never after it
      this.goneJobs.say();
      if (errors.length > 0) throw new AggregateError(errors, 'worker stopped with errors');
      this.log.info('worker stopped');
    })();
    return this.closing;
  }

  private forceAbort(): void {
    if (this.forced) return;
    this.forced = true;
    for (const bull of this.bulls.values()) bull.cancelAllJobs('shutdown');
    // Answers held while Redis is full are not recorded: their units go back to the queue.
    this.hold.stop();
  }
}

