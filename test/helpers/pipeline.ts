/**
 * A whole docbatch in one test process: a real Redis (unique prefix), the engine emulator on
 * port 0, a worker and a writer, with output and blob directories in a temp dir (or where
 * `config` puts them, s3:// included). `stop()` closes
 * everything and deletes the keys and files, and fails the test if something is left running.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config.ts';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.ts';
import type { InferWorker } from '../../src/infer/worker.ts';
import { createInferWorker } from '../../src/infer/worker-parts.ts';
import { enqueueFiles, type EnqueueFilesOptions, type FileOutcome } from '../../src/ingest/batch.ts';
import { silentLogger, type Logger } from '../../src/observe/log.ts';
import { waitForDocs, type DocProgress } from '../../src/observe/progress.ts';
import { DocStore } from '../../src/store/docs.ts';
import { createWriter, type DocumentWriter, type WriterOptions } from '../../src/write/writer.ts';
import { openSink } from '../../src/write/sinks.ts';
import { openBlobStore } from '../../src/store/storage.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from './redis.ts';

export interface PipelineOptions {
  /** Test file (import.meta.filename) for the key prefix. */
  file: string;
  emulator?: Partial<EmulatorOptions>;
  config?: Partial<Config>;
  /** Start a worker (default true). */
  worker?: boolean;
  /** Writer options (its hooks); the reconciler runs every second unless these say otherwise. */
  writer?: WriterOptions;
  log?: Logger;
}

export interface Pipeline {
  config: Config;
  engine: Emulator;
  worker: InferWorker | null;
  writer: DocumentWriter;
  store: DocStore;
  redis: Redis;
  dir: string;
  enqueue(files: string[], options?: EnqueueFilesOptions): Promise<FileOutcome[]>;
  wait(docIds: string[], timeoutMs?: number): Promise<DocProgress[]>;
  startWorker(overrides?: Partial<Config>): Promise<InferWorker>;
  stop(): Promise<void>;
}

export async function startPipeline(options: PipelineOptions): Promise<Pipeline> {
  const prefix = uniquePrefix(options.file);
  const dir = await mkdtemp(join(tmpdir(), 'docbatch-test-'));
  const log = options.log ?? silentLogger();
  const engine = await startEmulator({ speed: 50, outputTokensMin: 20, outputTokensMax: 60, ...options.emulator });
  const config: Config = {
    ...loadConfig({}, {}),
    redisUrl: TEST_REDIS_URL,
    prefix,
    engineUrl: engine.url,
    outDir: join(dir, 'out'),
    blobDir: join(dir, 'blobs'),
    renderers: 2,
    logLevel: 'silent',
    shutdownTimeoutMs: 5000,
    ...options.config,
  };
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  redis.on('error', () => {}); // reconnects are expected in the Redis-restart test
  const store = new DocStore(redis, prefix);
  // One machine: the store exists before the first worker looks for it.
  await openBlobStore(config).markStore();
  const workers: InferWorker[] = [];
  const startWorker = async (overrides: Partial<Config> = {}) => {
    const w = createInferWorker({ ...config, ...overrides }, log);
    // One that refuses to start (WORKER_UNFIT) is closed too: its queues and connections stay open otherwise.
    workers.push(w);
    await w.start();
    return w;
  };
  let writer: DocumentWriter | undefined;
  const stop = async () => {
    await Promise.allSettled(workers.map((w) => w.close({ deadlineMs: 2000 })));
    await writer?.close();
    await engine.close();
    redis.disconnect();
    await deletePrefix(prefix);
    await rm(dir, { recursive: true, force: true });
  };
  let worker: InferWorker | null;
  try {
    worker = options.worker === false ? null : await startWorker();
    writer = createWriter(config, log, { reconcileIntervalMs: 1000, ...options.writer });
    await writer.start();
  } catch (err) {
    // The caller gets no stop(): what was opened is closed, and its keys (the queues' meta) deleted, here.
    await stop().catch(() => {});
    throw err;
  }
  return {
    config,
    engine,
    worker,
    writer,
    store,
    redis,
    dir,
    // As `docbatch enqueue` does: written documents' outputs are checked through OUT_DIR's sink.
    enqueue: (files, o) => enqueueFiles(files, config, log, { outputs: openSink(config), ...o }),
    wait: (docIds, timeoutMs = 60_000) => waitForDocs(store, docIds, { intervalMs: 100, signal: AbortSignal.timeout(timeoutMs) }),
    startWorker,
    stop,
  };
}

/** The docIds of files that went in; throws if any was rejected. */
export function acceptedIds(outcomes: FileOutcome[]): string[] {
  const rejected = outcomes.filter((o) => o.error);
  if (rejected.length > 0) throw new Error(`rejected: ${rejected.map((o) => o.error!.describe()).join('; ')}`);
  return outcomes.flatMap((o) => (o.runs ?? []).map((r) => r.docId));
}

/** Splits a docbatch Markdown output into its pages: page number → body (or failure). */
export function parsePages(markdown: string): Map<number, { body: string; failed: string | null }> {
  const pages = new Map<number, { body: string; failed: string | null }>();
  const re = /^<!-- page (\d+)( failed: (.*?))? -->$/gm;
  const marks = [...markdown.matchAll(re)];
  marks.forEach((m, i) => {
    const start = m.index! + m[0].length;
    const end = i + 1 < marks.length ? marks[i + 1]!.index! : markdown.length;
    pages.set(Number(m[1]), { body: markdown.slice(start, end).trim(), failed: m[3] ?? null });
  });
  return pages;
}

/** The emulator's echo lines in a reply (see docs/emulator.md). */
export function parseEcho(reply: string): { images: Array<{ width: number; height: number; format: string }>; text: { words: number; first: string; last: string } | null } {
  const images = [...reply.matchAll(/^image \d+: (\d+)x(\d+) (\w+)/gm)].map((m) => ({ width: Number(m[1]), height: Number(m[2]), format: m[3]! }));
  // first/last are JSON-escaped strings.
  const t = /^text: words=(\d+) sha256=\w+ first=("(?:[^"\\]|\\.)*") last=("(?:[^"\\]|\\.)*")$/m.exec(reply);
  return { images, text: t ? { words: Number(t[1]), first: JSON.parse(t[2]!) as string, last: JSON.parse(t[3]!) as string } : null };
}
