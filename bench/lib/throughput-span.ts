/**
 * The figure of one run, as an outsider would take it: the engine's generated tokens over its
 * span, from the first request's arrival to the last answer (`/emulator/stats`: the ramp and the
 * tail included; nothing cut out). Every run of one profile sends the very same requests, so the
 * tokens are the same and the ratio of two runs is the ratio of their spans.
 *
 * The means (running, waiting, KV use, windows, in flight, gate, CPU) are over the samples taken
 * while the engine held any request: they explain a figure, they are not the figure.
 */
import type { EmulatorStats } from '../../src/emulator/index.ts';
import type { Sample } from './throughput-sampler.ts';

export interface RunFigure {
  /** First arrival at the engine to the last answer, seconds. */
  spanSec: number;
  tokens: number;
  tokensPerSec: number;
  completed: number;
  preemptions: number;
  running: number;
  waiting: number;
  kv: number;
  /** Sums over workers of the mean window, in flight, and units waiting at the gate. */
  window: number;
  inFlight: number;
  gateWaiting: number;
  /** Machine-wide CPU busy share (0..1, of all cores) while the engine held requests. */
  cpu: number;
}

export function runFigure(stats: EmulatorStats, samples: readonly Sample[]): RunFigure {
  if (stats.firstArrivalMs === null || stats.lastDoneMs === null) throw new Error('the engine answered no request');
  const spanSec = (stats.lastDoneMs - stats.firstArrivalMs) / 1000;
  const busy = samples.filter((s) => s.running + s.waiting > 0);
  const mean = (f: (s: Sample) => number) => (busy.length ? busy.reduce((n, s) => n + f(s), 0) / busy.length : 0);
  const sum = (s: Sample, f: (w: Sample['workers'][number]) => number) => s.workers.reduce((n, w) => n + f(w), 0);
  const a = busy[0];
  const b = busy.at(-1);
  return {
    spanSec,
    tokens: stats.generationTokens,
    tokensPerSec: stats.generationTokens / spanSec,
    completed: stats.completed,
    preemptions: stats.preemptions,
    running: mean((s) => s.running),
    waiting: mean((s) => s.waiting),
    kv: mean((s) => s.kv),
    window: mean((s) => sum(s, (w) => w.window)),
    inFlight: mean((s) => sum(s, (w) => w.inFlight)),
    gateWaiting: mean((s) => sum(s, (w) => w.gateWaiting)),
    cpu: a && b && b.cpuTotal > a.cpuTotal ? (b.cpuBusy - a.cpuBusy) / (b.cpuTotal - a.cpuTotal) : 0,
  };
}
