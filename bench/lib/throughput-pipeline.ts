/**
 * One pipeline scenario of bench/throughput.ts, every part a separate process as in production:
 * `docbatch engine` (the emulator), N × `docbatch worker`, `docbatch writer`, then
 * `docbatch enqueue FILE`; a real Redis under a unique DOCBATCH_PREFIX, deleted afterwards.
 * It waits until the document is written and checks that every unit succeeded.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connectRedis, openQueue } from '../../queues/connect.ts';
import { DocStore } from '../../src/store/docs.ts';
import { freePort, Proc, startEngine, waitForUrl } from './throughput-procs.ts';
import { readStats, Sampler, type Sample } from './throughput-sampler.ts';
import { runFigure, type RunFigure } from './throughput-span.ts';

export interface PipelineOptions {
  workers: number;
  file: string;
  units: number;
  speed: number;
  engineArgs: string[];
  redisUrl: string;
  /** Scratch directory: blobs, output, logs. */
  dir: string;
  intervalMs: number;
  /** Give up after this long. */
  timeoutMs: number;
  /** Environment for every docbatch process (e.g. CHUNK_TOKENS for the producer). */
  env?: Record<string, string>;
  /** Extra environment for the workers (e.g. BATCH_SIZE). */
  workerEnv: Record<string, string>;
  /** Sees every sample once the run is over (for --trace). */
  onSamples?: (samples: Sample[]) => void;
}

export interface PipelineResult {
  figure: RunFigure;
  /** Seconds from `enqueue` to the document written. */
  wallSeconds: number;
  done: number;
  failed: number;
  prefix: string;
}

export async function runPipeline(o: PipelineOptions): Promise<PipelineResult> {
  const prefix = `dbbench-${randomBytes(4).toString('hex')}`;
  const dir = join(o.dir, `pipeline-${o.workers}w-${prefix}`);
  await mkdir(dir, { recursive: true });
  const env: Record<string, string> = {
    REDIS_URL: o.redisUrl,
    DOCBATCH_PREFIX: prefix,
    BLOB_DIR: join(dir, 'blobs'),
    OUT_DIR: join(dir, 'out'),
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
    ...o.env,
  };
  const procs: Proc[] = [];
  const redis = connectRedis(o.redisUrl, 'client');
  const queue = openQueue('infer', { redisUrl: o.redisUrl, prefix, attempts: 5 }, redis);
  let sampler: Sampler | null = null;
  try {
    const engine = await startEngine(o.speed, o.engineArgs, dir);
    procs.push(engine.proc);
    procs.push(new Proc('writer', ['writer'], env, join(dir, 'writer.log')));
    const metricsUrls: string[] = [];
    for (let i = 0; i < o.workers; i++) {
      const port = await freePort();
      const worker = new Proc(
        `worker ${i}`,
        ['worker'],
        { ...env, ...o.workerEnv, ENGINE_URL: engine.url, WORKER_NAME: `bench-w${i}`, METRICS_PORT: String(port) },
        join(dir, `worker-${i}.log`),
      );
      procs.push(worker);
      metricsUrls.push(`http://127.0.0.1:${port}/metrics`);
    }
    await Promise.all(metricsUrls.map((url, i) => waitForUrl(url, 60_000, procs[2 + i])));

    sampler = new Sampler({
      engineUrl: engine.url,
      workers: metricsUrls,
      queued: async () => {
        const c = await queue.getJobCounts('wait', 'prioritized', 'delayed');
        return (c.wait ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0);
      },
      intervalMs: o.intervalMs,
    });
    sampler.start();
    const started = performance.now();
    const enqueue = new Proc('enqueue', ['enqueue', '--json', o.file], env, join(dir, 'enqueue.log'));
    const { code, stdout } = await enqueue.output();
    if (code !== 0) throw new Error(`docbatch enqueue exited with ${code}: ${stdout} (see ${join(dir, 'enqueue.log')})`);
    const docId = (JSON.parse(stdout.trim().split('\n')[0]!) as { docId: string }).docId;

    const store = new DocStore(redis, prefix);
    const deadline = started + o.timeoutMs;
    let record = await store.get(docId);
    while (record?.state !== 'written') {
      if (performance.now() > deadline) throw new Error(`document not written after ${o.timeoutMs / 1000} s (${record?.done ?? 0}/${o.units} units done); logs in ${dir}`);
      for (const p of procs) {
        if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`${p.name} exited (${p.child.exitCode ?? p.child.signalCode}); logs in ${dir}`);
      }
      await new Promise((r) => setTimeout(r, 500));
      record = await store.get(docId);
    }
    const wallSeconds = (performance.now() - started) / 1000;
    await sampler.sample();
    await sampler.close();
    await writeFile(join(dir, 'samples.json'), JSON.stringify(sampler.samples));
    o.onSamples?.(sampler.samples);
    const stats = await readStats(engine.url);
    if (!stats) throw new Error('the engine did not answer /emulator/stats');
    return {
      figure: runFigure(stats, sampler.samples),
      wallSeconds,
      done: record.done,
      failed: record.failed,
      prefix,
    };
  } finally {
    await sampler?.close();
    // Workers first (they drain), then the writer, then the engine.
    const workers = procs.filter((p) => p.name.startsWith('worker'));
    const codes = await Promise.all(workers.map((p) => p.stop()));
    await Promise.all(procs.filter((p) => !workers.includes(p)).map((p) => p.stop()));
    await queue.close();
    await deletePrefix(redis, prefix);
    redis.disconnect();
    const bad = codes.filter((c) => c !== 0);
    if (bad.length > 0) process.stderr.write(`warning: ${bad.length} worker(s) exited with ${bad.join(', ')} (logs in ${dir})\n`);
  }
}

async function deletePrefix(redis: ReturnType<typeof connectRedis>, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}
