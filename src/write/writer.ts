/**
 * The writer process: consumes `write` jobs (one per finished document generation), assembles
 * the outputs into OUT_DIR, moves the results out of Redis into their archive, and marks the
 * document written; the last of a set of runs on several models also writes their comparison
 * (`X.compare.json`, compare.ts). Runs the reconciler, the collector (gc) and a sweep of the
 * temporary files crashed writers left in OUT_DIR on timers, and publishes a heartbeat
 * (`{p}:writers`, every 5 s).
 *
 * A write that fails is retried with backoff (the write job's attempts); one that cannot succeed
 * (a path outside OUT_DIR, a name the filesystem refuses) fails at once. Either way the document
 * is then marked failed with WRITE_FAILED, so `enqueue --wait` and `status` return and say so,
 * and `docbatch retry` (or enqueueing the file again) writes it again.
 *
 * A retry may reopen units while their document is being written: the document is then not
 * marked written (the mark checks the record's `reopens` and the results, atomically with
 * retiring them), and is written again as soon as the reopened units have settled.
 */
import { UnrecoverableError, type Job } from 'bullmq';
import { join } from 'node:path';
import { checkLocations } from '../store/locations.ts';
import type { Redis } from 'ioredis';
import { connectRedis, openInferQueues, openQueue, openWorker, type TypedQueue, type TypedWorker } from '../../queues/connect.ts';
import { isRedisFull, redisFullProblem } from '../../queues/redis-link.ts';
import { MAX_STALLED_COUNT, type WriteJobData, type WriteJobName, type WriteJobResult } from '../../queues/contracts.ts';
import { ensureWriteJob } from '../../queues/schedule.ts';
import type { Config } from '../config.ts';
import { DocbatchError, toDocbatchError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import { archiveResults } from '../store/archive.ts';
import type { BlobStore } from '../store/blobs.ts';
import { ChunkReader } from '../store/chunk-index.ts';
import { DocStore } from '../store/docs.ts';
import { Feeder } from '../store/feed.ts';
import { collect } from '../store/gc.ts';
import { lazyS3Client, openBlobStore } from '../store/storage.ts';
import type { DocRecord } from '../store/types.ts';
import { withTimeout } from '../timeouts.ts';
import { writePages, type Assembled } from './assemble.ts';
import { PermanentWriteError, sweepTemporaries, type OutputSink } from './atomic.ts';
import { writeChat } from './chat.ts';
import { dueComparison, markComparisonDue, writeComparison } from './compare.ts';
import { openSink } from './sinks.ts';
import { Reconciler } from './reconcile.ts';
import { buildReport } from './report.ts';

/** How often a writer writes its heartbeat (workers' is every 5 s too). */
const HEARTBEAT_MS = 5000;

export interface WriterOptions {
  /** How often the reconciler runs. @defaultValue 30_000 */
  reconcileIntervalMs?: number;
  /** How often the collector runs. @defaultValue 3_600_000 */
  gcIntervalMs?: number;
  /** Called after a document is written (metrics, tests). */
  onWritten?: (docId: string, files: string[]) => void;
  /**
   * Called once a document's outputs are written, before its results are archived and it is
   * marked written (tests land a retry inside a write with it).
   */
  beforeArchive?: (docId: string, gen: number) => Promise<void>;
}

export interface WriterParts {
  config: Config;
  log: Logger;
  redis: Redis;
  bullRedis: Redis;
  store: DocStore;
  blobs: BlobStore;
  sink: OutputSink;
  feeder: Feeder;
  chunks: ChunkReader;
  writeQueue: TypedQueue<'write'>;
  inferQueue: (name: string) => TypedQueue<'infer'>;
  closeQueues: () => Promise<void>;
}

export function createWriter(config: Config, log: Logger, options: WriterOptions = {}): DocumentWriter {
  checkLocations(config); // outputs never among the blobs, blobs never among the outputs
  const redis = connectRedis(config.redisUrl, 'worker');
  const queues = openInferQueues(config, redis);
  const inferQueue = (name: string) => queues.get(name);

  const s3 = lazyS3Client(config);
  const blobs = openBlobStore(config, s3);
  const sink = openSink(config, s3);
  return new DocumentWriter(
    {
      config,
      // `docbatch writer` binds its role already; the demo's logger does not.
      log: 'role' in log.bindings() ? log : log.child({ role: 'writer' }),
      redis,
      bullRedis: connectRedis(config.redisUrl, 'worker'),
      store: new DocStore(redis, config.prefix),
      blobs,
      sink,
      feeder: new Feeder(redis, config.prefix, inferQueue, { documents: config.feedDocuments }),
      chunks: new ChunkReader(blobs),
      writeQueue: openQueue('write', config, redis),
      inferQueue,
      closeQueues: () => queues.close(2000),
    },
    options,
  );
}

export class DocumentWriter {
  readonly store: DocStore;
  private readonly parts: WriterParts;
  private readonly config: Config;
  private readonly log: Logger;
  private readonly bull: TypedWorker<'write'>;
  private readonly reconciler: Reconciler;
  private readonly options: WriterOptions;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closing: Promise<void> | null = null;
  /** When Redis last refused a write for want of memory (REDIS_FULL); null while it takes them. */
  private fullSince: number | null = null;
  private readonly startedAt = Date.now();
  /** Documents written, and writes failed for good, since start (the heartbeat carries them). */
  private written = 0;
  private writeFailures = 0;

  constructor(parts: WriterParts, options: WriterOptions = {}) {
    this.parts = parts;
    this.config = parts.config;
    this.options = options;
    this.log = parts.log;
    this.store = parts.store;
    this.reconciler = new Reconciler({ store: parts.store, feeder: parts.feeder, chunks: parts.chunks, writeQueue: parts.writeQueue, inferQueue: parts.inferQueue, log: this.log });
    this.bull = openWorker('write', (job) => this.process(job), this.config, parts.bullRedis, {
      name: `${this.config.workerName}-writer`,
      autorun: false,
      concurrency: 4,
      // As the GPU workers': a writer stopped or killed mid-write is a stall, and a stall is not
      // a failed write (onFailed).
      lockDuration: this.config.lockDurationMs,
      stalledInterval: this.config.stalledIntervalMs,
      maxStalledCount: MAX_STALLED_COUNT,
    });
    this.bull.on('failed', (job, err) => void this.onFailed(job, err));
    this.bull.on('error', (err) => {
      if (isRedisFull(err)) this.onRedisFull(err);
      else this.log.error({ err: err.message }, 'queue error (retrying)');
    });
  }

  /**
   * Redis at its maxmemory refuses BullMQ's scripts, and BullMQ asks again at once (thousands of
   * errors a second): say it once, pause taking write jobs, and try again every 5 s (a refusal
   * pauses again at once). Once 5 s pass without one, say that Redis takes writes again.
   */
  private onRedisFull(err: Error): void {
    if (this.closing) return;
    if (this.fullSince === null) {
      const problem = redisFullProblem(err, this.config.redisUrl)!;
      this.log.error({ code: problem.code, err: problem.message }, 'Redis is full: writes paused; trying again every 5 s');
    }
    this.fullSince = Date.now();
    if (this.bull.isPaused()) return;
    void this.bull.pause(true).then(() =>
      this.schedule(() => {
        if (this.closing) return;
        this.bull.resume();
        this.schedule(() => {
          if (this.fullSince !== null && Date.now() - this.fullSince >= 5000 && !this.bull.isPaused()) {
            this.fullSince = null;
            this.log.info('Redis accepts writes again: writing');
          }
        }, 5000);
      }, 5000),
    );
  }

  async start(): Promise<void> {
    await this.parts.redis.ping();
    await this.reachStorage();
    await this.sweepOutputs();
    void this.bull.run().catch((err: Error) => this.log.error({ err: err.message }, 'writer loop ended with an error'));
    this.every(this.options.reconcileIntervalMs ?? 30_000, Math.min(this.options.reconcileIntervalMs ?? 30_000, 2000), () => this.reconcile());
    this.every(this.options.gcIntervalMs ?? 3_600_000, 60_000, () => this.collect());
    // Not only at start: a writer that runs for weeks collects what crashed writers left too.
    this.every(this.options.gcIntervalMs ?? 3_600_000, this.options.gcIntervalMs ?? 3_600_000, () => this.sweepOutputs());
    // `{p}:writers`, as workers have `{p}:workers`: status and --wait say when documents wait
    // for a writer and none runs (observe/workers.ts).
    await this.heartbeat().catch((err: Error) => this.log.debug({ err: err.message }, 'heartbeat failed'));
    // Redis away is said once by the connection's watch, not by every missed beat.
    this.every(HEARTBEAT_MS, HEARTBEAT_MS, () => this.heartbeat().catch((err: Error) => this.log.debug({ err: err.message }, 'heartbeat failed')));
    this.log.info({ out: this.config.outDir }, 'writer started');
  }

  /** `{p}:writers`: this writer is running, since when, and what it wrote. */
  private async heartbeat(): Promise<void> {
    const beat = { at: Date.now(), startedAt: this.startedAt, out: this.config.outDir, written: this.written, failed: this.writeFailures, redisFull: this.fullSince !== null };
    await this.parts.redis.hset(`${this.config.prefix}:writers`, this.config.workerName, JSON.stringify(beat));
  }

  /** The heartbeat at once (status shows the counts as they change, not up to 5 s late); best effort. */
  private beatNow(): void {
    if (!this.closing) void this.heartbeat().catch((err: Error) => this.log.debug({ err: err.message }, 'heartbeat failed'));
  }

  /** Removes temporary files in OUT_DIR older than an hour (writers that crashed mid-write). */
  private async sweepOutputs(): Promise<void> {
    const removed = this.parts.sink.remote ? 0 : await sweepTemporaries(this.config.outDir, 60 * 60_000).catch(() => 0);
    if (removed > 0) this.log.info({ removed }, 'removed temporary files left by crashed writers');
  }

  /** Object storage that cannot be used (no bucket, credentials refused, no answer) stops the writer at start. */
  private async reachStorage(): Promise<void> {
    for (const part of [this.parts.blobs, this.parts.sink]) {
      if (!part.remote) continue;
      try {
        await part.reach();
      } catch (err) {
        throw new DocbatchError('STORAGE_UNREACHABLE', `writer: ${(err as Error).message}`, { cause: err });
      }
    }
  }

  private every(intervalMs: number, firstMs: number, fn: () => Promise<unknown>): void {
    const tick = async () => {
      try {
        await fn();
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'background round failed');
      }
      if (!this.closing) this.schedule(tick, intervalMs);
    };
    this.schedule(tick, firstMs);
  }

  private schedule(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  /** Runs one reconcile round now (tests); also feeds every queue a little, so work flows with no worker feeding. */
  async reconcile() {
    const outcome = await this.reconciler.round();
    for (const queue of await this.store.queues()) await this.parts.feeder.topUp(queue, this.config.feedDepth);
    return outcome;
  }

  /** Runs the collector now (the `docbatch gc` verb runs the same). */
  collect() {
    return collect({ store: this.store, blobs: this.parts.blobs, feeder: this.parts.feeder, log: this.log }, { retentionMs: this.config.retentionDays * 86_400_000 });
  }

  private async process(job: Job<WriteJobData, WriteJobResult, WriteJobName>): Promise<WriteJobResult> {
    const { docId, gen } = job.data;
    const log = this.log.child({ docId });
    // A unit reopened while this write ran (docbatch retry, Bull Board) is not marked written:
    // if its answer already settled (its write job was this running one), write again now.
    for (let round = 1; ; round++) {
      const record = await this.store.get(docId);
      if (!record || record.gen !== gen) {
        log.info({ gen, current: record?.gen ?? null }, 'write job of an old generation; skipped');
        return { files: [], completed: 0, failed: 0 };
      }
      if (record.state === 'written') {
        // Its writer died after the mark, before comparing the runs of several models: compare now.
        const due = await dueComparison(record, this.store);
        if (due) await writeComparison(due, { store: this.store, sink: this.parts.sink, log });
        return { files: record.files, completed: record.done, failed: record.failed };
      }
      // Results are counted, not the counters: a unit counts once it has a result.
      const settled = await this.store.settledCount(docId, gen);
      if (settled < record.units) {
        if (record.state === 'running') {
          // Reopened since it was complete: the settling of its last unit schedules the write
          // (the reconciler does, should that land while this job is still finishing).
          log.info({ settled, units: record.units }, 'units were reopened; written once they settle');
          return { files: [], completed: 0, failed: 0 };
        }
        throw new Error(`document ${docId} has ${settled} of ${record.units} units settled; not complete`);
      }
      let outcome: { result: WriteJobResult; marked: 'written' | 'stale' | 'changed' | 'already' };
      try {
        outcome = await this.write(record, log);
      } catch (caught) {
        const err = toDocbatchError(caught, 'WRITE_FAILED');
        log.warn({ code: err.code, err: err.message, attempt: job.attemptsMade + 1 }, 'writing the document failed');
        if (err instanceof PermanentWriteError) throw new UnrecoverableError(`${err.code}: ${err.message}`);
        // An input the outputs are assembled from (a chat export's chunks) is gone from a store
        // that answers: trying again for 17 minutes cannot bring it back. Failed now, saying how.
        if (err.code === 'BLOB_MISSING') {
          throw new UnrecoverableError(`BLOB_MISSING: ${err.message}; enqueue the file again (it is stored again), then docbatch retry ${docId}`);
        }
        throw new DocbatchError('WRITE_FAILED', err.message, { cause: err });
      }
      if (outcome.marked !== 'changed') return outcome.result;
      if (round >= 5) throw new Error(`document ${docId} was reopened during each of ${round} writes; writing it again later`);
      log.info('units were reopened while the document was written; not marked written');
    }
  }

  private async write(record: DocRecord, log: Logger): Promise<{ result: WriteJobResult; marked: 'written' | 'stale' | 'changed' | 'already' }> {
    const { docId, gen, meta } = record;
    const { sink, store, blobs } = this.parts;
    const base = join(meta.outSub, meta.name);
    const main: Assembled = meta.kind === 'chat' ? await writeChat(record, store, blobs, sink, base) : await writePages(record, store, sink, base);
    const reportPath = await this.reportLocation(base);
    const outputs = [...(main.file ? [main.file] : []), reportPath];
    const report = buildReport(record, { outputs, tally: main.tally, ...(this.config.gpuHourlyUsd !== undefined ? { gpuHourlyUsd: this.config.gpuHourlyUsd } : {}) });
    await sink.writeWhole(`${base}.report.json`, `${JSON.stringify(report, null, 2)}\n`);
    await this.options.beforeArchive?.(docId, gen);
    await archiveResults(store, blobs, docId, gen, record.units);
    const result = { files: outputs, completed: main.tally.completed, failed: main.tally.failures.length };
    // The counters become what was written (when the tally covers every unit).
    const counted = main.tally.completed + main.tally.failures.length === record.units;
    await markComparisonDue(record, store);
    const marked = await store.markWritten(docId, gen, {
      files: outputs,
      now: new Date().toISOString(),
      reopens: record.reopens,
      retentionSeconds: this.config.retentionDays * 86_400,
      meta,
      ...(counted ? { counts: { done: main.tally.completed, failed: main.tally.failures.length } } : {}),
    });
    if (marked === 'stale') log.info('a newer generation started while writing; this one is not marked written');
    if (marked !== 'written') return { result, marked };
    log.info({ files: outputs, completed: main.tally.completed, failed: main.tally.failures.length }, 'document written');
    // After the mark: the last of a set of sibling runs to be written compares them (compare.ts).
    await writeComparison(record, { store, sink, log });
    this.written++;
    this.beatNow();
    this.options.onWritten?.(docId, outputs);
    return { result, marked };
  }

  private async reportLocation(base: string): Promise<string> {
    return this.parts.sink.locationOf(`${base}.report.json`);
  }

  /** A write job out of attempts (or failed for good): the document is failed, with the reason. */
  private async onFailed(job: Job<WriteJobData> | undefined, err: Error): Promise<void> {
    if (!job) return;
    // Writers that died or stopped mid-write (a stall, again and again): nothing is wrong with
    // the document or the outputs. It is written again, not marked failed.
    if (/stalled more than allowable limit/i.test(err.message)) {
      this.log.warn({ docId: job.data.docId, err: err.message }, 'the write stalled (writers stopped or died mid-write); writing it again');
      await ensureWriteJob(this.parts.writeQueue, job.data.docId, job.data.gen).catch((e: unknown) => this.log.error({ err: (e as Error).message }, 'could not queue the write again'));
      return;
    }
    const final = err instanceof UnrecoverableError || err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    if (!final) return;
    const message = err.message.replace(/^WRITE_FAILED: /, '');
    try {
      if (await this.store.markWriteFailed(job.data.docId, job.data.gen, { code: 'WRITE_FAILED', message })) {
        this.writeFailures++;
        this.beatNow();
        this.log.error({ docId: job.data.docId, code: 'WRITE_FAILED', err: message }, 'the document could not be written; marked failed (docbatch retry writes it again)');
      }
    } catch (e) {
      this.log.error({ err: (e as Error).message }, 'could not mark a failed write');
    }
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      // Bounded: a writer must stop even while Redis is down. A document cut off mid-write
      // leaves only a temporary file; its job runs again. Redis away: BullMQ's graceful close
      // (QUIT, waiting for its fetch loop) waits for a Redis that does not answer; forced, it
      // disconnects (a write in progress cannot be marked written without Redis anyway).
      const away = this.parts.redis.status !== 'ready' || this.parts.bullRedis.status !== 'ready';
      await withTimeout(this.bull.close(away), 10_000);
      await withTimeout(this.parts.writeQueue.close(), 2000);
      // A writer that stopped is not one that went silent: its heartbeat goes with it.
      if (!away) await withTimeout(this.parts.redis.hdel(`${this.config.prefix}:writers`, this.config.workerName), 1000).catch(() => undefined);
      await this.parts.closeQueues();
      this.parts.redis.disconnect();
      this.parts.bullRedis.disconnect();
      this.log.info('writer stopped');
    })();
    return this.closing;
  }
}
