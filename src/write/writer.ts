/**
 * The writer process: consumes `write` jobs (one per finished document generation), assembles
 * the outputs and marks the document written; runs the reconciler on a timer.
 */
import { join } from 'node:path';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { connectRedis, openQueue, openWorker, type TypedQueue, type TypedWorker } from '../../queues/connect.ts';
import type { WriteJobData, WriteJobName, WriteJobResult } from '../../queues/contracts.ts';
import type { Config } from '../config.ts';
import { BlobStore } from '../ingest/blobs.ts';
import type { Logger } from '../observe/log.ts';
import { DocStore } from '../store/docs.ts';
import { writeJsonl, writeMarkdown } from './assemble.ts';
import { writeFileAtomic } from './atomic.ts';
import { Reconciler } from './reconcile.ts';
import { buildReport } from './report.ts';
import { withTimeout } from '../timeouts.ts';

export interface WriterOptions {
  /** How often the reconciler runs. @defaultValue 30_000 */
  reconcileIntervalMs?: number;
  /** Called after a document is written (metrics, tests). */
  onWritten?: (docId: string, files: string[]) => void;
}

export class DocumentWriter {
  readonly store: DocStore;
  private readonly config: Config;
  private readonly log: Logger;
  private readonly blobs: BlobStore;
  private readonly redis: Redis;
  private readonly bullRedis: Redis;
  private readonly inferQueue: TypedQueue<'infer'>;
  private readonly writeQueue: TypedQueue<'write'>;
  private readonly bull: TypedWorker<'write'>;
  private readonly reconciler: Reconciler;
  private readonly options: WriterOptions;
  private timer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;

  constructor(config: Config, log: Logger, options: WriterOptions = {}) {
    this.config = config;
    this.options = options;
    this.log = log.child({ role: 'writer' });
    this.redis = connectRedis(config.redisUrl, 'worker');
    this.bullRedis = connectRedis(config.redisUrl, 'worker');
    this.store = new DocStore(this.redis, config.prefix);
    this.blobs = new BlobStore(config.blobDir);
    this.inferQueue = openQueue('infer', config, this.redis);
    this.writeQueue = openQueue('write', config, this.redis);
    this.reconciler = new Reconciler({ store: this.store, infer: this.inferQueue, write: this.writeQueue, log: this.log });
    this.bull = openWorker('write', (job) => this.process(job), config, this.bullRedis, {
      name: `${config.workerName}-writer`,
      autorun: false,
      concurrency: 4,
    });
    this.bull.on('failed', (job, err) => this.log.error({ docId: job?.data.docId, err: err.message }, 'writing a document failed'));
    this.bull.on('error', (err) => this.log.error({ err: err.message }, 'queue error (retrying)'));
  }

  async start(): Promise<void> {
    await this.redis.ping();
    void this.bull.run().catch((err: Error) => this.log.error({ err: err.message }, 'writer loop ended with an error'));
    const interval = this.options.reconcileIntervalMs ?? 30_000;
    const tick = async () => {
      try {
        await this.reconciler.round();
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'reconcile round failed');
      }
      if (!this.closing) this.timer = setTimeout(tick, interval).unref();
    };
    this.timer = setTimeout(tick, Math.min(interval, 2000)).unref();
    this.log.info({ out: this.config.outDir }, 'writer started');
  }

  /** Runs one reconcile round now (tests, `docbatch status --reconcile`). */
  reconcile() {
    return this.reconciler.round();
  }

  private async process(job: Job<WriteJobData, WriteJobResult, WriteJobName>): Promise<WriteJobResult> {
    const { docId, gen } = job.data;
    const log = this.log.child({ docId });
    const record = await this.store.get(docId);
    if (!record || record.gen !== gen) {
      log.info({ gen, current: record?.gen ?? null }, 'write job of an old generation; skipped');
      return { files: [], completed: 0, failed: 0 };
    }
    if (record.done + record.failed < record.units) {
      throw new Error(`document ${docId} has ${record.done + record.failed} of ${record.units} units settled; not complete`);
    }
    const base = join(record.meta.outDir ?? this.config.outDir, record.meta.name);
    const main =
      record.meta.kind === 'pdf'
        ? await writeMarkdown(record, this.store, `${base}.md`)
        : await writeJsonl(record, this.store, this.blobs, `${base}.jsonl`);
    const reportPath = `${base}.report.json`;
    const report = buildReport(record, {
      outputs: [main.file, reportPath],
      completed: main.completed,
      failures: main.failures,
      models: main.models,
      ...(main.renderers ? { renderers: main.renderers } : {}),
      ...(this.config.gpuHourlyUsd !== undefined ? { gpuHourlyUsd: this.config.gpuHourlyUsd } : {}),
    });
    await writeFileAtomic(reportPath, `${JSON.stringify(report, null, 2)}\n`);
    const files = [main.file, reportPath];
    await this.store.markWritten(docId, gen, files, new Date().toISOString());
    log.info({ files, completed: main.completed, failed: main.failures.length }, 'document written');
    this.options.onWritten?.(docId, files);
    return { files, completed: main.completed, failed: main.failures.length };
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      if (this.timer) clearTimeout(this.timer);
      // Bounded: a writer must stop even while Redis is down. A document cut off mid-write
      // leaves only a temporary file; its job runs again.
      await withTimeout(this.bull.close(), 10_000);
      await withTimeout(this.inferQueue.close(), 2000);
      await withTimeout(this.writeQueue.close(), 2000);
      this.redis.disconnect();
      this.bullRedis.disconnect();
      this.log.info('writer stopped');
    })();
    return this.closing;
  }
}
