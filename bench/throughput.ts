/**
 * Does a GPU worker keep the engine full, whatever the engine? For every emulator profile
 * (`docbatch engine --profile NAME`: schedulers and costs that behave like different engines,
 * docs/emulator.md), on the same requests:
 *
 * 1. the engine's own best: a closed loop straight at a fresh engine, sending every unit's request
 *    once (built beforehand by the worker's own UnitPreparer, as the worker sends it), at the
 *    engine's ideal concurrency: the best of real runs at the concurrency that the emulator's
 *    scheduler finds best in simulation and around it (bench/lib/throughput-ideal.ts);
 * 2. the pipeline with one `docbatch worker` (separate processes: engine, worker, writer,
 *    `docbatch enqueue`, a real Redis under a unique prefix, deleted afterwards);
 * 3. the same with four workers sharing the engine;
 *
 * each figure = the engine's generated tokens / its span, from the first request's arrival to the
 * last answer (the ramp and the tail included), read from the engine's own counters; the ratio is
 * pipeline / best. docs/benchmarks.md quotes it.
 *
 *   node_modules/.bin/node bench/throughput.ts [--profiles vllm,admit-all,...] [--kind chunks|pages]
 *       [--units 600] [--chunk-tokens 7000] [--workers 1,4|0] [--speed 4] [--concurrency auto|C,C...]
 *       [--pdf FILE] [--batch-size N] [--worker-env NAME=VALUE]... [--trace] [--keep]
 *
 * Needs Redis at REDIS_URL (default redis://127.0.0.1:6379).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { EMULATOR_DEFAULTS, ENGINE_PROFILES, type EngineProfile } from '../src/emulator/index.ts';
import { runDirect } from './lib/throughput-direct.ts';
import { idealConcurrency } from './lib/throughput-ideal.ts';
import { runPipeline } from './lib/throughput-pipeline.ts';
import { startEngine } from './lib/throughput-procs.ts';
import type { RunFigure } from './lib/throughput-span.ts';
import { printTrace } from './lib/throughput-trace.ts';
import { buildWorkload, type WorkloadKind } from './lib/throughput-workload.ts';

const { values } = parseArgs({
  options: {
    profiles: { type: 'string', default: Object.keys(ENGINE_PROFILES).join(',') },
    kind: { type: 'string', default: 'chunks' },
    units: { type: 'string', default: '600' },
    'chunk-tokens': { type: 'string', default: '7000' },
    workers: { type: 'string', default: '1,4' },
    speed: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: 'auto' },
    pdf: { type: 'string' },
    interval: { type: 'string', default: '500' },
    'batch-size': { type: 'string' },
    'worker-env': { type: 'string', multiple: true, default: [] },
    'redis-url': { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
    keep: { type: 'boolean', default: false },
    trace: { type: 'boolean', default: false },
  },
});

const kind = values.kind as WorkloadKind;
if (kind !== 'pages' && kind !== 'chunks') throw new TypeError(`--kind must be pages or chunks, got ${values.kind}`);
const profiles = values.profiles.split(',').map((p) => {
  if (!(p in ENGINE_PROFILES)) throw new TypeError(`--profiles: unknown profile ${p}; known: ${Object.keys(ENGINE_PROFILES).join(', ')}`);
  return p as EngineProfile;
});
const units = positiveInt('units', values.units);
// Chunk budget for the producer (and so the prompts): 7000 by the producer's estimate gives
// prompts of ~3.3k tokens as the engine counts them, the issue's case.
const chunkTokens = positiveInt('chunk-tokens', values['chunk-tokens']);
const workerCounts = values.workers === '0' ? [] : values.workers.split(',').map((w) => positiveInt('workers', w));
const speed = Number(values.speed);
if (!(speed > 0)) throw new TypeError(`--speed must be > 0, got ${values.speed}`);
const fixedConcurrency = values.concurrency === 'auto' ? null : values.concurrency.split(',').map((c) => positiveInt('concurrency', c));
const intervalMs = positiveInt('interval', values.interval);
const workerEnv: Record<string, string> = Object.fromEntries(
  values['worker-env'].map((kv) => {
    const eq = kv.indexOf('=');
    if (eq < 1) throw new TypeError(`--worker-env wants NAME=VALUE, got ${kv}`);
    return [kv.slice(0, eq), kv.slice(eq + 1)];
  }),
);
if (values['batch-size']) workerEnv.BATCH_SIZE = values['batch-size'];

const dir = mkdtempSync(join(tmpdir(), 'docbatch-throughput-'));
const cleanup = () => {
  if (values.keep) log(`kept ${dir} (process logs, samples.json per scenario)`);
  else rmSync(dir, { recursive: true, force: true });
};
process.once('SIGINT', () => {
  cleanup();
  process.exit(130);
});

interface Row {
  profile: EngineProfile;
  name: string;
  f: RunFigure;
  /** The simulated span for this concurrency (direct rows), seconds. */
  note: string;
}

try {
  const cores = availableParallelism();
  log(`preparing the ${kind} workload (${units} units)...`);
  const workload = await buildWorkload({ kind, units, env: { CHUNK_TOKENS: String(chunkTokens) }, ...(values.pdf ? { pdf: resolve(values.pdf) } : {}), dir, renderers: cores, maxModelLen: EMULATOR_DEFAULTS.maxModelLen });
  log(`${workload.describe}; prepared in ${workload.prepareSeconds.toFixed(1)} s`);

  const rows: Row[] = [];
  const summary: string[] = [];
  for (const profile of profiles) {
    const engineArgs = ['--profile', profile];
    const ideal = await idealConcurrency(profile, speed, workload.requests);
    const c0 = ideal.concurrency;
    const concurrencies = fixedConcurrency ?? [...new Set([Math.max(1, Math.round(c0 * 0.8)), c0, Math.round(c0 * 1.25)])];
    log(
      `${profile}: prompt ≈ ${Math.round(ideal.promptTokens)} tokens, output ≈ ${Math.round(ideal.outputTokens)}; simulation: best at C=${c0}, ` +
        `${Math.round(ideal.best.tokensPerSec)} tok/s over ${(ideal.best.spanMs / 1000).toFixed(1)} s; direct runs at C=${concurrencies.join(', ')}`,
    );
    let best: Row | null = null;
    for (const c of concurrencies) {
      const engine = await startEngine(speed, engineArgs, dir);
      try {
        const r = await runDirect({
          engineUrl: engine.url,
          requests: workload.requests,
          concurrency: c,
          intervalMs,
          ...(values.trace ? { onSamples: (s) => printTrace(`${profile}: direct loop C=${c}`, s) } : {}),
        });
        const errs = [...r.errors].map(([code, n]) => `${code}×${n}`).join(' ');
        const row: Row = { profile, name: `engine, direct loop C=${c}`, f: r.figure, note: errs ? `errors ${errs}` : '' };
        rows.push(row);
        if (!best || row.f.tokensPerSec > best.f.tokensPerSec) best = row;
        log(`  direct C=${c}: ${r.figure.tokensPerSec.toFixed(0)} tok/s over ${r.figure.spanSec.toFixed(1)} s (load ${load()})`);
      } finally {
        await engine.proc.stop();
      }
    }
    const ratios: string[] = [];
    for (const workers of workerCounts) {
      const r = await runPipeline({
        workers,
        file: workload.file,
        units: workload.requests.length,
        speed,
        engineArgs,
        redisUrl: values['redis-url'],
        dir,
        intervalMs,
        timeoutMs: Math.max(300_000, 20 * ideal.best.spanMs),
        env: { CHUNK_TOKENS: String(chunkTokens) },
        workerEnv,
        ...(values.trace ? { onSamples: (s) => printTrace(`${profile}: pipeline, ${workers} workers`, s) } : {}),
      });
      const name = `pipeline, ${workers} worker${workers > 1 ? 's' : ''}`;
      const tokensNote = best && r.figure.tokens !== best.f.tokens ? `, TOKENS DIFFER (${r.figure.tokens} vs ${best.f.tokens})` : '';
      rows.push({ profile, name, f: r.figure, note: `${r.done}/${workload.requests.length} done${r.failed ? `, ${r.failed} FAILED` : ''}${tokensNote}` });
      const ratio = best ? r.figure.tokensPerSec / best.f.tokensPerSec : NaN;
      ratios.push(`${workers}w ${ratio.toFixed(3)}`);
      log(`  ${name}: ${r.figure.tokensPerSec.toFixed(0)} tok/s over ${r.figure.spanSec.toFixed(1)} s, ratio ${ratio.toFixed(3)} (load ${load()})`);
    }
    if (best) best.name += ' (best)';
    summary.push(`${profile.padEnd(14)} best C=${best?.name.match(/C=(\d+)/)?.[1] ?? '?'}  ${ratios.join('  ')}`);
  }
  printTable(rows, { kind, speed, describe: workload.describe, cores });
  console.log('');
  console.log('ratio of the pipeline to the engine\'s own best, per profile:');
  for (const line of summary) console.log(`  ${line}`);
  console.log(`load average at the end: ${load()}`);
} finally {
  cleanup();
}

function printTable(rows: Row[], info: { kind: string; speed: number; describe: string; cores: number }): void {
  const head = ['profile', 'scenario', 'span s', 'gen tok/s', 'ratio', 'running', 'waiting', 'kv', 'preempt', 'window', 'in flight', 'gate', 'cpu', 'notes'];
  const bestOf = new Map<string, number>();
  for (const r of rows) if (r.name.endsWith('(best)')) bestOf.set(r.profile, r.f.tokensPerSec);
  const body = rows.map((r) => {
    const best = bestOf.get(r.profile);
    return [
      r.profile,
      r.name,
      r.f.spanSec.toFixed(1),
      r.f.tokensPerSec.toFixed(0),
      best ? (r.f.tokensPerSec / best).toFixed(3) : '—',
      r.f.running.toFixed(1),
      r.f.waiting.toFixed(1),
      `${(r.f.kv * 100).toFixed(0)}%`,
      String(r.f.preemptions),
      r.f.window ? r.f.window.toFixed(1) : '—',
      r.f.window ? r.f.inFlight.toFixed(1) : '—',
      r.f.window ? r.f.gateWaiting.toFixed(1) : '—',
      `${(r.f.cpu * 100).toFixed(0)}%`,
      r.note,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i <= 1 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  console.log('');
  console.log(`workload: ${info.describe}`);
  console.log(`engine: docbatch emulator, --profile as listed, speed ${info.speed}; ${info.cores} cores`);
  console.log('');
  console.log(line(head));
  for (const row of body) console.log(line(row));
  console.log('');
  console.log('span: the engine\'s first request to its last answer (ramp and tail included); gen tok/s: its generated tokens over');
  console.log('the span; ratio: against the best direct loop of the same profile. running, waiting, kv: engine means while busy;');
  console.log('preempt: preemptions in the run; window, in flight, gate (prepared units waiting for a slot): summed over workers;');
  console.log('cpu: machine-wide busy share of all cores.');
}

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`--${name} must be a positive integer, got ${value}`);
  return n;
}

function load(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}
