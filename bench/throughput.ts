/**
 * Does a GPU worker keep the engine full? Generated tokens/s of the engine emulator at its
 * default timing model, three ways, on the same requests:
 *
 * 1. the engine's best rate: a closed loop of 2 × maxNumSeqs clients straight at it, with the
 *    requests the worker would send (pages rendered by the real RenderPool and built by the
 *    worker's UnitPreparer; chunks read from the producer's sidecar), prepared beforehand;
 * 2. the pipeline with one `docbatch worker` (separate processes: engine, worker, writer,
 *    `docbatch enqueue`, a real Redis under a unique prefix, deleted afterwards);
 * 3. the same with four workers sharing the engine;
 *
 * each over a steady window (after a warm-up, before the tail; bench/lib/throughput-window.ts),
 * read from the engine's `vllm:generation_tokens_total`, and the ratio pipeline / best.
 * docs/benchmarks.md quotes it.
 *
 *   node_modules/.bin/node bench/throughput.ts [--kind pages|chunks] [--units 800] [--workers 1,4|0]
 *       [--speed 2] [--warmup S] [--measure S] [--concurrency 512] [--pdf FILE] [--batch-size N]
 *       [--worker-env NAME=VALUE]... [--skip-direct] [--trace] [--keep]
 *
 * Needs Redis at REDIS_URL (default redis://127.0.0.1:6379).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { EngineClient } from '../src/engine/client.ts';
import { EMULATOR_DEFAULTS, estimateBestRate, TIMING_DEFAULTS } from '../src/emulator/index.ts';
import { runDirect } from './lib/throughput-direct.ts';
import { runPipeline, type PipelineResult } from './lib/throughput-pipeline.ts';
import { startEngine } from './lib/throughput-procs.ts';
import { printTrace } from './lib/throughput-trace.ts';
import type { SteadyWindow } from './lib/throughput-window.ts';
import { buildWorkload, type WorkloadKind } from './lib/throughput-workload.ts';

const { values } = parseArgs({
  options: {
    kind: { type: 'string', default: 'pages' },
    units: { type: 'string', default: '800' },
    workers: { type: 'string', default: '1,4' },
    speed: { type: 'string', default: '2' },
    warmup: { type: 'string' },
    measure: { type: 'string' },
    concurrency: { type: 'string', default: String(2 * EMULATOR_DEFAULTS.maxNumSeqs) },
    pdf: { type: 'string' },
    interval: { type: 'string', default: '500' },
    'batch-size': { type: 'string' },
    'worker-env': { type: 'string', multiple: true, default: [] },
    'redis-url': { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
    'skip-direct': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    trace: { type: 'boolean', default: false },
  },
});

const kind = values.kind as WorkloadKind;
if (kind !== 'pages' && kind !== 'chunks') throw new TypeError(`--kind must be pages or chunks, got ${values.kind}`);
const units = positiveInt('units', values.units);
const workerCounts = values.workers === '0' ? [] : values.workers.split(',').map((w) => positiveInt('workers', w));
const speed = Number(values.speed);
if (!(speed > 0)) throw new TypeError(`--speed must be > 0, got ${values.speed}`);
const concurrency = positiveInt('concurrency', values.concurrency);
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

try {
  const cores = availableParallelism();
  log(`preparing the ${kind} workload (${units} units)...`);
  const workload = await buildWorkload({ kind, units, ...(values.pdf ? { pdf: resolve(values.pdf) } : {}), dir, renderers: cores, maxModelLen: EMULATOR_DEFAULTS.maxModelLen });
  log(`${workload.describe}; prepared in ${workload.prepareSeconds.toFixed(1)} s`);

  // The prompt as the engine counts it, and what the timing model predicts for it.
  const engine = await startEngine(speed, [], dir);
  let promptTokens: number;
  try {
    const client = new EngineClient({ url: engine.url });
    const step = Math.max(1, Math.floor(workload.requests.length / 40));
    const counts: number[] = [];
    for (let i = 0; i < workload.requests.length; i += step) counts.push((await client.tokenize({ messages: workload.requests[i]!.messages })) ?? 0);
    await client.close();
    promptTokens = counts.reduce((a, b) => a + b, 0) / counts.length;
  } catch (err) {
    await engine.proc.stop();
    throw err;
  }
  const outputTokens = (TIMING_DEFAULTS.outputTokensMin + TIMING_DEFAULTS.outputTokensMax) / 2;
  const model = estimateBestRate({ speed }, { promptTokens, outputTokens });
  // One request's life at full load; warm-up and measurement are counted in those.
  const lifeMs = outputTokens * model.stepMs;
  const warmupMs = values.warmup ? Number(values.warmup) * 1000 : Math.max(20_000, 2 * lifeMs);
  const measureMs = values.measure ? Number(values.measure) * 1000 : Math.max(30_000, 3 * lifeMs);
  log(
    `engine: emulator default timing at speed ${speed}; prompt ≈ ${Math.round(promptTokens)} tokens, output ≈ ${outputTokens}: ` +
      `model predicts ${model.running} running (limited by ${model.limitedBy}), ${Math.round(model.generatedTokensPerSec)} tok/s, ` +
      `a request lives ≈ ${(lifeMs / 1000).toFixed(1)} s; warm-up ${(warmupMs / 1000).toFixed(0)} s`,
  );

  const rows: Row[] = [];
  let best: number | null = null;
  if (!values['skip-direct']) {
    log(`direct closed loop, ${concurrency} clients, ${((warmupMs + measureMs) / 1000).toFixed(0)} s...`);
    try {
      const direct = await runDirect({
        engineUrl: engine.url,
        requests: workload.requests,
        concurrency,
        warmupMs,
        measureMs,
        intervalMs,
        ...(values.trace ? { onSamples: (s) => printTrace('direct loop', s) } : {}),
      });
      best = direct.window.tokensPerSec;
      const errs = [...direct.errors].map(([c, n]) => `${c}×${n}`).join(' ');
      rows.push({ name: `engine, direct loop C=${concurrency}`, w: direct.window, note: errs ? `errors ${errs}` : '' });
    } finally {
      await engine.proc.stop();
    }
  } else {
    await engine.proc.stop();
  }

  const redisUrl = values['redis-url'];
  for (const workers of workerCounts) {
    log(`pipeline with ${workers} worker${workers > 1 ? 's' : ''}...`);
    const r: PipelineResult = await runPipeline({
      workers,
      file: workload.file,
      units: workload.requests.length,
      speed,
      engineArgs: [],
      redisUrl,
      dir,
      warmupMs,
      intervalMs,
      timeoutMs: Math.max(300_000, (20 * workload.requests.length * outputTokens * 1000) / model.generatedTokensPerSec),
      workerEnv,
      ...(values.trace ? { onSamples: (s) => printTrace(`pipeline, ${workers} workers`, s) } : {}),
    });
    rows.push({
      name: `pipeline, ${workers} worker${workers > 1 ? 's' : ''}`,
      w: r.window,
      note: `${r.done}/${workload.requests.length} done${r.failed ? `, ${r.failed} FAILED` : ''}, ${r.wallSeconds.toFixed(0)} s`,
    });
  }

  printTable(rows, best, { kind, speed, promptTokens, model: model.generatedTokensPerSec, describe: workload.describe, cores });
} finally {
  cleanup();
}

interface Row {
  name: string;
  w: SteadyWindow;
  note: string;
}

function printTable(rows: Row[], best: number | null, info: { kind: string; speed: number; promptTokens: number; model: number; describe: string; cores: number }): void {
  const ratio = (v: number) => (best ? (v / best).toFixed(3) : '—');
  const head = ['scenario', 'window s', 'gen tok/s', 'ratio', 'from 0', 'ratio', 'running', 'waiting', 'kv', 'preempt/s', 'window', 'in flight', 'gate', 'cpu', 'notes'];
  const body = rows.map((r) => [
    r.name,
    `${r.w.from.toFixed(0)}–${r.w.to.toFixed(0)}`,
    r.w.tokensPerSec.toFixed(0),
    ratio(r.w.tokensPerSec),
    r.w.fromStartTokensPerSec.toFixed(0),
    ratio(r.w.fromStartTokensPerSec),
    r.w.running.toFixed(1),
    r.w.waiting.toFixed(1),
    `${(r.w.kv * 100).toFixed(0)}%`,
    r.w.preemptionsPerSec.toFixed(2),
    r.w.window ? r.w.window.toFixed(1) : '—',
    r.w.window ? r.w.inFlight.toFixed(1) : '—',
    r.w.window ? r.w.gateWaiting.toFixed(1) : '—',
    `${(r.w.cpu * 100).toFixed(0)}%`,
    r.note,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  console.log('');
  console.log(`workload: ${info.describe}`);
  console.log(
    `engine: docbatch emulator, default timing, speed ${info.speed}; prompt ≈ ${Math.round(info.promptTokens)} tokens; ` +
      `timing model (estimateBestRate, no preemption) ${info.model.toFixed(0)} tok/s; ${info.cores} cores`,
  );
  console.log('');
  console.log(line(head));
  for (const row of body) console.log(line(row));
  console.log('');
  console.log('window s: the steady window in seconds after the first generated token; gen tok/s: vllm:generation_tokens_total over it;');
  console.log('ratio: against the direct loop. from 0: first token to the end of the window (the ramp included, the tail not).');
  console.log('running, waiting, kv, preempt/s: the engine over the window; window, in flight, gate (prepared units waiting for a');
  console.log('slot): summed over workers; cpu: machine-wide busy share of all cores.');
}

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`--${name} must be a positive integer, got ${value}`);
  return n;
}

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}
