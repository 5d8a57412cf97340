/**
 * Two models side by side (issue 10): the same documents enqueued once for model-a and model-b,
 * each model served by its own engine and worked by its own worker, all at the same time; prints
 * each model's throughput (units/s, generated and prompt tokens/s) over its own run, and how
 * much of its engine's best rate that is. docs/benchmarks.md quotes its output.
 *
 *   node_modules/.bin/node bench/two-models.ts [--docs 16] [--pages 25] [--speed-a 2] [--speed-b 1] [--image-size 1288]
 *
 * Everything runs as a user runs it, as separate processes through bin/docbatch: two `docbatch
 * engine --model NAME` (the emulator at its default timing model; model-b slower by default,
 * like a bigger model), a `docbatch worker` for each engine, one `docbatch writer`, and
 * `docbatch enqueue --model model-a --model model-b --wait` of generated PDFs (numberedPdf, each
 * made distinct). Redis at REDIS_URL (default redis://127.0.0.1:6379) under a throwaway prefix,
 * deleted afterwards.
 *
 * A model's time is its engine's busy span, read from the engine's own counters polled every
 * 100 ms: from the first unit request it received to the answer that completed the model's last
 * unit. Units and tokens are summed from the model's reports. The engine's best rate is the
 * emulator's own formula (estimateBestRate, docs/emulator.md) for the measured mean prompt and
 * output tokens; "peak running" is the most sequences its engine ran at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { numberedPdf } from '../scripts/lib/pdf-writer.ts';
import { estimateBestRate } from '../src/emulator/index.ts';
import { purgePrefix } from '../src/store/admin.ts';
import { LocalBlobStore } from '../src/store/blobs-local.ts';
import { BIN, startDocbatch, stopChild } from './lib/cli.ts';

const { values } = parseArgs({
  options: {
    docs: { type: 'string', default: '16' },
    pages: { type: 'string', default: '25' },
    'speed-a': { type: 'string', default: '2' },
    'speed-b': { type: 'string', default: '1' },
    'image-size': { type: 'string', default: '1288' },
  },
});
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const MODELS = [
  { name: 'model-a', speed: Number(values['speed-a']) },
  { name: 'model-b', speed: Number(values['speed-b']) },
];

const start = startDocbatch;
const stop = stopChild;

interface ReportFields {
  units: number;
  completed: number;
  started_at: string | null;
  finished_at: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  models: string[];
}

const dir = mkdtempSync(join(tmpdir(), 'docbatch-bench-two-models-'));
const prefix = `bench-two-models-${process.pid}`;
const env = { REDIS_URL: redisUrl, DOCBATCH_PREFIX: prefix, BLOB_DIR: join(dir, 'blobs'), OUT_DIR: join(dir, 'out'), IMAGE_SIZE: values['image-size'] };
const children: ChildProcess[] = [];
try {
  const inputs = join(dir, 'in');
  mkdirSync(inputs);
  const docs = Number(values.docs);
  const pages = Number(values.pages);
  for (let i = 0; i < docs; i++) writeFileSync(join(inputs, `doc-${i + 1}.pdf`), Buffer.concat([numberedPdf(pages), Buffer.from(`\n% copy ${i}\n`)]));

  const engines = MODELS.map((m) => start(['engine', '--port', '0', '--model', m.name, '--speed', String(m.speed)], {}));
  children.push(...engines.map((e) => e.child));
  const urls = await Promise.all(engines.map((e) => e.url));
  // The store exists before the workers look for it, as on one machine after a first enqueue.
  await new LocalBlobStore(env.BLOB_DIR).markStore();
  const workers = MODELS.map((m, i) => start(['worker'], { ...env, ENGINE_URL: urls[i]!, WORKER_NAME: `gpu-${m.name}` }));
  const writer = start(['writer'], env);
  children.push(...workers.map((w) => w.child), writer.child);
  await new Promise((r) => setTimeout(r, 2000)); // workers checked their engines, renderers warm

  // Each engine's own counters, polled while the run goes: its busy span is from the first unit
  // request it received to the answer that completed the model's last unit.
  const expected = docs * pages;
  const stats = async (url: string) => (await (await fetch(`${url}/emulator/stats`)).json()) as { requests: number; completed: number; maxRunning: number };
  const base = await Promise.all(urls.map(stats));
  const spans = MODELS.map(() => ({ first: NaN, last: NaN, peak: 0 }));
  const t0 = Date.now();
  const enqueue = spawn(BIN, ['enqueue', inputs, '--wait', '--json', ...MODELS.flatMap((m) => ['--model', m.name])], { env: { ...process.env, ...env, LOG_FORMAT: 'json' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  enqueue.stderr!.on('data', (d: Buffer) => (stderr += d));
  const exit = new Promise<number | null>((r) => enqueue.once('exit', (code) => r(code)));
  let code: number | null | undefined;
  void exit.then((c) => (code = c));
  while (code === undefined) {
    const now = await Promise.all(urls.map(stats));
    const at = Date.now();
    now.forEach((s, i) => {
      const span = spans[i]!;
      if (Number.isNaN(span.first) && s.requests > base[i]!.requests) span.first = at;
      if (Number.isNaN(span.last) && s.completed - base[i]!.completed >= expected) span.last = at;
      span.peak = s.maxRunning;
    });
    await Promise.race([exit, new Promise((r) => setTimeout(r, 100))]);
  }
  const wall = (Date.now() - t0) / 1000;
  if (code !== 0) throw new Error(`enqueue --wait exited ${code}: ${stderr.slice(-1500)}`);

  console.log(`${docs} documents × ${pages} pages for each of ${MODELS.length} models, side by side; ${values['image-size']} px PNG; ${availableParallelism()} cores; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`enqueue command to all written: ${wall.toFixed(1)} s. Per model: from the first unit request its engine received to the answer completing its last unit (engine counters polled every 100 ms)`);
  console.log('| model | engine speed | first request after | units | seconds | units/s | generated tok/s | prompt tok/s | peak running | engine best units/s | of best |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  MODELS.forEach((m, i) => {
    const folder = join(env.OUT_DIR, m.name);
    const reports = readdirSync(folder)
      .filter((f) => f.endsWith('.report.json'))
      .map((f) => JSON.parse(readFileSync(join(folder, f), 'utf8')) as ReportFields);
    if (reports.length !== docs || reports.some((r) => r.completed !== r.units || r.models.join() !== m.name)) {
      throw new Error(`${m.name}: expected ${docs} complete reports answered by ${m.name}`);
    }
    const units = reports.reduce((s, r) => s + r.units, 0);
    const promptTokens = reports.reduce((s, r) => s + r.prompt_tokens, 0);
    const completionTokens = reports.reduce((s, r) => s + r.completion_tokens, 0);
    const span = spans[i]!;
    const seconds = (span.last - span.first) / 1000;
    const best = estimateBestRate({ speed: m.speed }, { promptTokens: promptTokens / units, outputTokens: completionTokens / units });
    const rate = units / seconds;
    console.log(
      `| ${m.name} | ${m.speed} | ${((span.first - t0) / 1000).toFixed(1)} s | ${units} | ${seconds.toFixed(1)} | ${rate.toFixed(2)} | ${(completionTokens / seconds).toFixed(0)} | ${(promptTokens / seconds).toFixed(0)} | ${span.peak} | ${best.requestsPerSec.toFixed(2)} | ${(rate / best.requestsPerSec).toFixed(2)} |`,
    );
  });
} finally {
  await Promise.all(children.map(stop));
  const redis = new Redis(redisUrl);
  await purgePrefix(redis, prefix);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
}
