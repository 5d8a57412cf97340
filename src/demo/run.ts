/**
 * `docbatch demo`: the whole pipeline on embedded defaults, ending by itself. Uses the Redis at
 * REDIS_URL if one answers (under its own key prefix, cleaned before and after), or starts a
 * private redis-server; starts the engine emulator, a worker and the writer in this process;
 * enqueues the samples that ship in samples/; waits; prints where the outputs are and how fast
 * it went.
 */
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config.ts';
import { startEmulator } from '../emulator/index.ts';
import { createInferWorker } from '../infer/worker-parts.ts';
import { enqueueFiles } from '../ingest/batch.ts';
import { connectRedis } from '../../queues/connect.ts';
import type { Logger } from '../observe/log.ts';
import { waitForDocs } from '../observe/progress.ts';
import { purgePrefix } from '../store/admin.ts';
import { ROOT_URL } from '../root.ts';
import { DocStore } from '../store/docs.ts';
import { createWriter } from '../write/writer.ts';
import { openBlobStore } from '../store/storage.ts';
import { redisAnswers, startPrivateRedis, type PrivateRedis } from './private-redis.ts';

export const SAMPLES_DIR = fileURLToPath(new URL('samples', ROOT_URL));
export const SAMPLE_FILES = ['sample-report.pdf', 'conversations.json'];

export interface DemoOptions {
  /** Emulated engine speed-up (the emulator models a real GPU; 10 runs it ten times faster). @defaultValue 10 */
  speed?: number;
  out?: (line: string) => void;
}

export async function runDemo(config: Config, log: Logger, options: DemoOptions = {}): Promise<number> {
  const say = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const started = performance.now();
  let privateRedis: PrivateRedis | null = null;
  let redisUrl = config.redisUrl;
  if (!(await redisAnswers(redisUrl))) {
    say('No Redis answers at REDIS_URL; starting a private redis-server for the demo.');
    privateRedis = await startPrivateRedis();
    redisUrl = privateRedis.url;
  }
  const prefix = `${config.prefix}-demo`;
  const admin = connectRedis(redisUrl, 'client');
  await purgePrefix(admin, prefix);

  const engine = await startEmulator({ port: 0, speed: options.speed ?? 10 });
  say(`Engine emulator (vLLM-compatible) at ${engine.url}`);
  const cfg: Config = { ...config, redisUrl, prefix, engineUrl: engine.url, model: undefined };
  // The store exists before the worker checks for it (on one machine the producer would make it).
  await openBlobStore(cfg).markStore();
  const worker = createInferWorker(cfg, log);
  const writer = createWriter(cfg, log, { reconcileIntervalMs: 5000 });
  try {
    await worker.start();
    await writer.start();
    const files = SAMPLE_FILES.map((f) => join(SAMPLES_DIR, f));
    const outcomes = await enqueueFiles(files, cfg, log, { force: true });
    for (const o of outcomes) {
      if (o.error) throw o.error;
      for (const r of o.runs ?? []) say(`Enqueued ${relative(process.cwd(), o.file)}: ${r.units} ${r.kind === 'pdf' ? 'pages' : 'chunks'} (document ${r.docId})`);
    }
    const ids = outcomes.flatMap((o) => (o.runs ?? []).map((r) => r.docId));
    const store = new DocStore(admin, prefix);
    const done = await waitForDocs(store, ids, { intervalMs: 200, signal: AbortSignal.timeout(120_000) });
    const seconds = (performance.now() - started) / 1000;
    let units = 0;
    let tokens = 0;
    let failed = 0;
    say('');
    say(`Outputs in ${relative(process.cwd(), cfg.outDir) || '.'}/:`);
    for (const p of done) {
      units += p.record.units;
      failed += p.record.failed;
      tokens += p.record.completionTokens;
      for (const file of p.record.files) say(`  ${relative(process.cwd(), file)}`);
    }
    const md = done.find((p) => p.record.meta.kind === 'pdf')?.record.files[0];
    if (md) {
      const head = (await readFile(md, 'utf8')).split('\n').slice(0, 4);
      say('');
      say(`First lines of ${relative(process.cwd(), md)}:`);
      for (const line of head) say(`  | ${line.length > 100 ? `${line.slice(0, 100)}…` : line}`);
    }
    say('');
    say(`${units} units (${failed} failed) in ${seconds.toFixed(1)} s: ${(units / seconds).toFixed(1)} units/s, ${Math.round(tokens / seconds)} generated tokens/s against the emulator at speed ${options.speed ?? 10}.`);
    say('Point `docbatch worker --engine-url` at a real vLLM to do the same on a GPU (see README).');
    return failed > 0 ? 1 : 0;
  } finally {
    await worker.close({ deadlineMs: 5000 }).catch((err: unknown) => log.error({ err: String(err) }, 'worker close'));
    await writer.close().catch((err: unknown) => log.error({ err: String(err) }, 'writer close'));
    await engine.close();
    await purgePrefix(admin, prefix).catch(() => 0);
    admin.disconnect();
    await privateRedis?.stop();
  }
}
