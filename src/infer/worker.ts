/**
 * The GPU worker: wires the BullMQ worker on `infer` to the processor, the window controller,
 * the engine monitor and the render pool, and owns how it stops.
 *
 * Intake: BullMQ keeps `window + batchSize` units active; units beyond the window are prepared
 * (rendered) ahead and wait at the gate, so the engine never waits for the CPU. When the window
 * moves, the BullMQ concurrency follows. When the engine is down, intake pauses.
 *
 * Stopping (`close`): stop intake, let in-flight units finish until the deadline, then abort the
 * rest (they go back to `wait` without using an attempt) and close. `close()` is idempotent; a
 * second call with `force` skips the wait.
 */
import { WaitingError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { connectRedis, openQueue, openWorker, type TypedQueue, type TypedWorker } from '../../queues/connect.ts';
import { MAX_STALLED_COUNT, type UnitJobData, type UnitJobName, type UnitJobResult } from '../../queues/contracts.ts';
import type { Config } from '../config.ts';
import { DocbatchError } from '../errors.ts';
import { EngineClient } from '../engine/client.ts';
import { WindowController } from '../engine/window.ts';
import { BlobStore } from '../ingest/blobs.ts';
import type { Logger } from '../observe/log.ts';
import { RenderPool } from '../render/pool.ts';
import { DocStore } from '../store/docs.ts';
import type { UnitResult } from '../store/types.ts';
import { ensureWriteJob } from '../write/schedule.ts';
import { EngineMonitor } from './engine-monitor.ts';
import { Gate } from './gate.ts';
import { UnitProcessor } from './processor.ts';
import { UnitPreparer } from './units.ts';
import { withTimeout } from '../timeouts.ts';

export interface InferWorkerHooks {
  onSettled?: (data: UnitJobData, result: UnitResult) => void;
  onRequest?: (ms: number, ok: boolean) => void;
  onOom?: () => void;
}

export class InferWorker {
  readonly window: WindowController;
  readonly gate: Gate;
  readonly monitor: EngineMonitor;
  readonly client: EngineClient;
  readonly store: DocStore;
  private readonly config: Config;
  private readonly log: Logger;
  private readonly redis: Redis;
  private readonly bullRedis: Redis;
  private readonly writeQueue: TypedQueue<'write'>;
  private readonly inferQueue: TypedQueue<'infer'>;
  private readonly bull: TypedWorker<'infer'>;
  private pool: RenderPool | null = null;
  private active = 0;
  private idle: Array<() => void> = [];
  private closing: Promise<void> | null = null;
  private forced = false;
  private budgetTimer: NodeJS.Timeout | null = null;
  /** True while intake is paused because BUDGET_USD is spent. */
  overBudget = false;

  constructor(config: Config, log: Logger, hooks: InferWorkerHooks = {}) {
    this.config = config;
    this.log = log.child({ role: 'worker', worker: config.workerName });
    this.redis = connectRedis(config.redisUrl, 'worker');
    this.bullRedis = connectRedis(config.redisUrl, 'worker');
    this.store = new DocStore(this.redis, config.prefix);
    this.writeQueue = openQueue('write', { ...config }, this.redis);
    this.client = new EngineClient({
      url: config.engineUrl,
      ...(config.engineApiKey ? { apiKey: config.engineApiKey } : {}),
      ...(config.model ? { model: config.model } : {}),
      requestTimeoutMs: config.requestTimeoutMs,
      connections: Math.max(64, config.maxInFlight + 16),
    });
    this.window = new WindowController({
      initial: config.initialInFlight,
      max: config.maxInFlight,
      cleanIntervalMs: config.growIntervalMs,
      ceilingHoldMs: config.ceilingHoldMs,
    });
    // The gate reports every send and finish; say so now, or the controller takes a worker that
    // has sent nothing yet for one that fills its window, and grows it while idle.
    this.window.setInFlight(0);
    this.gate = new Gate(
      () => this.window.size,
      () => this.monitor.isDown,
      (inFlight) => this.window.setInFlight(inFlight),
    );
    this.monitor = new EngineMonitor(this.client, this.window, this.log);
    const preparer = new UnitPreparer(new BlobStore(config.blobDir), () => this.renderPool(), {
      imageFormat: config.imageFormat,
      imageQuality: config.imageQuality,
      pageMaxTokens: config.pageMaxTokens,
      chatMaxTokens: config.chatMaxTokens,
    });
    this.inferQueue = openQueue('infer', { ...config }, this.redis);
    const processor = new UnitProcessor({
      store: this.store,
      writeQueue: this.writeQueue,
      inferQueue: this.inferQueue,
      preparer,
      dispatch: {
        client: this.client,
        window: this.window,
        gate: this.gate,
        monitor: this.monitor,
        engineDownTimeoutMs: config.engineDownTimeoutMs,
        oomSizes: [1024, 768, 512].filter((s) => s < config.imageSize),
        log: this.log,
        ...(hooks.onOom ? { onOom: hooks.onOom } : {}),
        ...(hooks.onRequest ? { onRequest: hooks.onRequest } : {}),
      },
      prefix: config.prefix,
      workerName: config.workerName,
      imageSize: config.imageSize,
      log: this.log,
      ...(hooks.onSettled ? { onSettled: hooks.onSettled } : {}),
    });

    this.bull = openWorker(
      'infer',
      (job, token, signal) => this.run(processor, job, token, signal),
      config,
      this.bullRedis,
      {
        name: config.workerName,
        autorun: false,
        concurrency: this.concurrency(),
        lockDuration: config.lockDurationMs,
        stalledInterval: config.stalledIntervalMs,
        maxStalledCount: MAX_STALLED_COUNT,
      },
    );
    this.bull.on('lockRenewalFailed', (ids) => {
      for (const id of ids) {
        this.log.warn({ job: id, code: 'ABORTED' }, 'lost the lock of a unit; aborting its request');
        this.bull.cancelJob(id, 'lock lost');
      }
    });
    this.bull.on('failed', (job, err) => void this.onBullFailed(job, err));
    this.bull.on('error', (err) => this.log.error({ err: err.message }, 'queue error (retrying)'));
    this.monitor.on('change', () => this.follow());
    this.monitor.on('down', () => void this.bull.pause(true));
    this.monitor.on('up', () => {
      if (!this.closing && !this.overBudget) void this.bull.resume();
    });
  }

  /** Starts taking units. Resolves once the worker runs (it keeps running until close). */
  async start(): Promise<void> {
    await this.store.redis.ping();
    await this.checkEngine();
    this.monitor.start();
    await this.checkBudget();
    // Renderers start now, not when the first page arrives.
    void this.renderPool().warm().catch((err: Error) => this.log.warn({ err: err.message }, 'render pool did not warm up'));
    void this.bull.run().catch((err: Error) => this.log.error({ err: err.message }, 'worker loop ended with an error'));
    this.log.info({ engine: this.config.engineUrl, window: this.window.size, batchSize: this.config.batchSize }, 'worker started');
  }

  /**
   * A wrong API key or model name would fail every unit: say so at start. An engine that does
   * not answer yet (still loading the model) is fine: units wait for it.
   */
  private async checkEngine(): Promise<void> {
    try {
      const model = await this.client.model(AbortSignal.timeout(10_000));
      this.log.info({ model: model.id, maxModelLen: model.maxModelLen }, 'engine answers');
    } catch (err) {
      const e = err as { code?: string; status?: number; message?: string };
      if (e.status === 401 || e.status === 403 || e.code === 'MODEL_NOT_FOUND') {
        throw new DocbatchError('CONFIG_INVALID', `the engine at ${this.config.engineUrl} refused us: ${e.message} (check ENGINE_API_KEY and MODEL)`, { cause: err });
      }
      this.log.warn({ code: e.code, err: e.message }, 'engine does not answer yet; units will wait for it');
    }
  }

  /**
   * BUDGET_USD: once the engine time spent under this prefix (all workers, all documents) costs
   * the budget at GPU_HOURLY_USD, stop taking units (those in flight finish) and say so.
   */
  private async checkBudget(): Promise<void> {
    const { budgetUsd, gpuHourlyUsd } = this.config;
    if (budgetUsd === undefined || gpuHourlyUsd === undefined || this.closing) return;
    try {
      const spent = ((await this.store.spentEngineMs()) / 3_600_000) * gpuHourlyUsd;
      if (spent >= budgetUsd && !this.overBudget) {
        this.overBudget = true;
        await this.bull.pause(true);
        this.log.warn({ spentUsd: Number(spent.toFixed(4)), budgetUsd }, 'budget reached: intake paused (raise BUDGET_USD and restart the worker to go on)');
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not read the spend for the budget check');
    }
    if (!this.closing) this.budgetTimer = setTimeout(() => void this.checkBudget(), 2000).unref();
  }

  get activeUnits(): number {
    return this.active;
  }

  /** The BullMQ loop's state, for `/health`: paused is expected while the engine is down. */
  get loop(): { running: boolean; paused: boolean; closing: boolean } {
    return { running: this.bull.isRunning(), paused: this.bull.isPaused(), closing: this.closing !== null };
  }

  private concurrency(): number {
    return Math.max(1, this.window.size + this.config.batchSize);
  }

  /** Keeps BullMQ's intake in step with the window, and lets waiters through. */
  private follow(): void {
    const wanted = this.concurrency();
    if (this.bull.concurrency !== wanted && !this.closing) this.bull.concurrency = wanted;
    this.gate.notify();
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

  private async run(processor: UnitProcessor, job: Job<UnitJobData, UnitJobResult, UnitJobName>, token?: string, signal?: AbortSignal): Promise<UnitJobResult> {
    this.active++;
    try {
      if (this.closing && token) {
        // Fetched as intake was stopping: hand it straight back, without using an attempt.
        await job.moveToWait(token);
        throw new WaitingError();
      }
      return await processor.process(job, token, signal);
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
      if (this.active === 0) for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  /** BullMQ failed a unit without our processor deciding it (stalled too often): settle it. */
  private async onBullFailed(job: Job<UnitJobData> | undefined, err: Error): Promise<void> {
    if (!job || !/stalled|started more than/i.test(err.message)) return;
    try {
      const outcome = await this.store.settle(job.data.docId, job.data.gen, job.data.unit, {
        ok: false,
        code: 'UNIT_STALLED',
        message: `abandoned by crashed workers too often (${err.message})`,
        worker: this.config.workerName,
      });
      if (outcome.last) {
        await ensureWriteJob(this.writeQueue, job.data.docId, job.data.gen, { rerun: false });
      }
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
      if (this.budgetTimer) clearTimeout(this.budgetTimer);
      this.log.info({ active: this.active, deadlineMs }, 'stopping: no new units; finishing those in flight');
      await step('pause intake', () => withTimeout(this.bull.pause(true), 2000));
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
      if (this.active > 0) {
        await Promise.race([new Promise<void>((r) => this.idle.push(r)), new Promise((r) => setTimeout(r, 5000).unref())]);
      }
      await step('close worker', () => withTimeout(this.bull.close(this.active > 0), 5000));
      this.monitor.close();
      await step('close render pool', () => this.pool?.close());
      await step('close engine client', async () => {
        // close() waits for requests in flight; after the deadline nothing may hold us.
        if ((await withTimeout(this.client.close().then(() => true), 2000)) !== true) await this.client.destroy();
      });
      await step('close write queue', () => withTimeout(this.writeQueue.close(), 2000));
      await step('close infer queue', () => withTimeout(this.inferQueue.close(), 2000));
      this.redis.disconnect();
      this.bullRedis.disconnect();
      if (errors.length > 0) throw new AggregateError(errors, 'worker stopped with errors');
      this.log.info('worker stopped');
    })();
    return this.closing;
  }

  private forceAbort(): void {
    if (this.forced) return;
    this.forced = true;
    this.bull.cancelAllJobs('shutdown');
  }
}
