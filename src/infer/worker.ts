/**
 * The GPU worker (its parts are built from config by worker-parts.ts, the processor, preparer and
 * sender of its units by unit-pipeline.ts): checks its environment
 * (worker-checks.ts), and runs one BullMQ worker per infer queue it serves (the shared queue, and
 * the queue of each model its engine serves: unit-loop.ts), all feeding one engine through one
 * gate. It owns how intake pauses and how it stops.
 *
 * Intake: each BullMQ worker keeps `window + batchSize` units active; units beyond the window
 * are prepared (rendered) ahead and wait at the gate, so the engine never waits for the CPU.
 * Intake pauses for any of: the engine down, Redis full (REDIS_FULL), a fault of this worker's environment (its blob
 * store, its model), the budget spent, or stopping (intake.ts). While it runs, the worker keeps its queues'
 * wait lists topped up from the fair feeding round, and publishes a heartbeat (`{p}:workers`:
 * heartbeat.ts); its background steps run on timers.ts.
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
import type { TypedWorker } from '../../queues/connect.ts';
import { RedisLink } from '../../queues/redis-link.ts';
import type { UnitJobData, UnitJobName, UnitJobResult } from '../../queues/contracts.ts';
import type { Config } from '../config.ts';
import type { DocbatchError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import { RenderPool } from '../render/pool.ts';
import type { DocStore } from '../store/docs.ts';
import { settleUnit } from '../store/settle.ts';
import type { DocMeta, UnitResult } from '../store/types.ts';
import { withTimeout } from '../timeouts.ts';
import type { TokenCounts } from '../usage.ts';
import type { Engine, EngineSet } from './engine.ts';
import type { EngineFacts } from './environment.ts';
import { Heartbeat } from './heartbeat.ts';
import { AnswerHold } from './hold.ts';
import { Intake } from './intake.ts';
import { goneWords, LostLocks } from './lost-locks.ts';
import type { UnitProcessor } from './processor.ts';
import { BackgroundTimers } from './timers.ts';
import { openUnitLoop, servedQueues } from './unit-loop.ts';
import { createUnitProcessor, settlePartsOf } from './unit-pipeline.ts';
import { checkAtStart, recheckEnvironment, sayFallbacks } from './worker-checks.ts';
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

export type { PauseReason } from './intake.ts';

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
  private readonly timers: BackgroundTimers;
  /** Whether units are taken, and why not (intake.ts). */
  private readonly intake: Intake;
  /** Redis away or back: said once per change, not once per reconnect attempt. */
  private readonly link: RedisLink;
  /** `{p}:workers`: this worker's state, and the units it settled since it started. */
  private readonly beat: Heartbeat;
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
    this.timers = new BackgroundTimers(this.log, () => this.closing !== null);
    this.beat = new Heartbeat(parts.redis, parts.config.prefix, parts.config.workerName);
    this.on('unit:settled', (data, meta) => this.beat.settled(data, meta));
    this.intake = new Intake({
      log: this.log,
      redisUrl: parts.config.redisUrl,
      timers: this.timers,
      loops: () => this.bulls.values(),
      stopping: () => this.closing !== null,
      heartbeat: () => this.heartbeat(),
      recheckEnvironment: async () => {
        this.facts = await recheckEnvironment(this.parts, this.log);
      },
      paused: (reasons) => this.emit('intake:paused', reasons),
      resumed: () => this.emit('intake:resumed'),
    });
    this.hold = new AnswerHold({ log: this.log, redisUrl: parts.config.redisUrl, onFull: (err) => this.intake.onRedisFull(err) });
    this.processor = createUnitProcessor(parts, {
      log: this.log,
      hold: this.hold,
      renderPool: () => this.renderPool(),
      acceptsImages: () => this.facts?.acceptsImages ?? null,
      onEnvironmentError: (err) => this.intake.onEnvironmentError(err),
      onSettled: (data, meta, result) => this.emit('unit:settled', data, meta, result),
      onOom: () => this.emit('oom'),
      onRequest: (ms, ok) => this.emit('request', ms, ok),
      onUsage: (model, usage) => this.emit('usage', model, usage),
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
    if (usable) this.intake.resume('engine');
    else this.intake.pause('engine', `engine ${this.engine.label} down`);
  }

  /** Checks the environment (refusing to start with WORKER_UNFIT), then starts taking units. */
  async start(signal?: AbortSignal): Promise<void> {
    const { config, engines } = this.parts;
    const engine = engines.primary;
    this.facts = await checkAtStart(this.parts, this.log, signal);
    engines.start();
    sayFallbacks(engines, this.log);
    // Renderers start now, not when the first page arrives.
    if (this.facts.acceptsImages !== false) void this.renderPool().warm().catch((err: Error) => this.log.warn({ err: err.message }, 'render pool did not warm up'));
    for (const queue of this.queueNames()) this.openBull(queue);
    this.timers.every(250, () => this.feed());
    if (engines.fallbacks.length > 0) this.timers.every(1000, () => this.followEngines());
    this.timers.every(5000, () => this.heartbeat());
    if (config.budgetUsd !== undefined) this.timers.every(2000, () => this.checkBudget());
    if (config.exitWhenIdleS !== undefined) this.timers.every(1000, () => this.checkIdle());
    // Like every later step (`every`): a failure here (Redis full, a command refused) is logged,
    // never an unhandled rejection that takes the process down.
    for (const step of [() => this.feed(), () => this.heartbeat()]) void step().catch((err: Error) => this.log.debug({ err: err.message }, 'background step failed'));
    if (config.budgetUsd !== undefined) void this.checkBudget().catch(() => undefined);
    this.log.info({ engine: engine.label, model: this.facts.model, images: this.facts.acceptsImages, queues: [...this.bulls.keys()], window: engine.window.size, batchSize: config.batchSize }, 'worker started');
  }

  /** The queues this worker takes units from: the shared one (unless text-only) and one per served model. */
  queueNames(): string[] {
    return servedQueues(this.facts, this.config.model);
  }

  private openBull(queue: string): void {
    const bull = openUnitLoop(queue, {
      config: this.config,
      bullRedis: this.parts.bullRedis,
      link: this.link,
      log: this.log,
      concurrency: this.concurrency(),
      run: (job, token, signal) => this.run(job, token, signal, queue),
      lostLocks: this.lostLocks,
      goneJobs: this.goneJobs,
      onRedisFull: (err) => this.intake.onRedisFull(err),
      onFailed: (job, err) => void this.onBullFailed(job, err),
    });
    this.bulls.set(queue, bull);
    if (this.intake.isPaused) void bull.pause(true);
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
    return this.intake.reasons;
  }

  /** The environment fault that stopped intake, if any. */
  get unhealthy(): DocbatchError | null {
    return this.intake.unhealthy;
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

  /** Tops up the wait list of every queue this worker serves, from the fair round. */
  private async feed(): Promise<void> {
    if (this.intake.isPaused) return;
    for (const queue of this.bulls.keys()) {
      await this.parts.feeder.topUp(queue, Math.max(this.config.feedDepth, this.concurrency()));
    }
  }

  /** `{p}:workers`: what `status` and the dashboard say about workers (their engine down, their health). */
  private heartbeat(): Promise<void> {
    return this.beat.publish({
      engine: this.engine,
      engines: this.engines,
      model: this.facts?.model ?? null,
      paused: this.pauseReasons,
      unhealthy: this.intake.unhealthy,
      active: this.active,
      queues: [...this.bulls.keys()],
    });
  }

  /**
   * BUDGET_USD: once the engine time spent under this prefix (all workers, all documents) costs
   * the budget at GPU_HOURLY_USD, stop taking units (those in flight finish) and say so.
   */
  private async checkBudget(): Promise<void> {
    const { budgetUsd, gpuHourlyUsd } = this.config;
    if (budgetUsd === undefined || gpuHourlyUsd === undefined) return;
    const spent = ((await this.store.spentEngineMs()) / 3_600_000) * gpuHourlyUsd;
    if (spent >= budgetUsd && !this.intake.has('budget')) {
      this.intake.pause('budget', 'budget reached');
      this.log.warn({ spentUsd: Number(spent.toFixed(4)), budgetUsd }, 'budget reached: intake paused (raise BUDGET_USD and restart the worker to go on)');
    }
  }

  /** True while intake is paused because BUDGET_USD is spent. */
  get overBudget(): boolean {
    return this.intake.has('budget');
  }

  /** --exit-when-idle: no unit for that long, nothing waiting in its queues or their rounds. */
  private async checkIdle(): Promise<void> {
    // Paused only because its engines are down is no work: an idle worker sees its engines die
    // (the end of a run); whatever waits for them is counted in the queues below.
    if (this.active > 0 || this.intake.reasons.some((reason) => reason !== 'engine')) {
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
      const settle = settlePartsOf(this.parts);
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
      this.timers.clear();
      this.link.close();
      this.intake.markClosing();
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
      if (!away) await step('forget heartbeat', () => withTimeout(this.beat.forget(), 1000));
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

