/**
 * The steady window of a scenario, cut out of its samples the same way for the direct loop and
 * the pipeline:
 *
 * - it starts `warmupMs` after the engine generated its first token (the direct loop's first
 *   cohort prefills in lockstep; the pipeline's window is still growing);
 * - it ends at the last sample (direct loop: the loop is still full when it is stopped) or, for
 *   the pipeline, at the first sample where the `infer` queue is empty: from then on the engine
 *   drains, because nothing is left to send, which says nothing about the worker.
 *
 * Generated tokens/s = difference of `vllm:generation_tokens_total` between the two samples
 * that bound the window, over the time between them.
 */
import type { Sample } from './throughput-sampler.ts';

export interface SteadyWindow {
  /** Seconds from the first generated token to the window's start and end. */
  from: number;
  to: number;
  seconds: number;
  tokensPerSec: number;
  running: number;
  waiting: number;
  kv: number;
  /** Sums over workers of the mean window, in flight, and units waiting at the gate. */
  window: number;
  inFlight: number;
  gateWaiting: number;
  /** Machine-wide CPU busy share (0..1, of all cores). */
  cpu: number;
  /** Preemptions (recompute) per second over the window: the engine thrashing its KV cache. */
  preemptionsPerSec: number;
  /** From the first token to the window's end (the ramp included, the tail not): tokens / seconds. */
  fromStartTokensPerSec: number;
}

export function steadyWindow(samples: Sample[], o: { warmupMs: number; end: 'last' | 'queue-empty' }): SteadyWindow {
  const firstToken = samples.findIndex((s) => s.generated > 0);
  if (firstToken < 0) throw new Error('the engine generated no token');
  // The first token came between the sample before and this one.
  const t0 = firstToken > 0 ? samples[firstToken - 1]!.t : samples[firstToken]!.t;
  const start = samples.findIndex((s) => s.t >= t0 + o.warmupMs);
  if (start < 0) throw new Error(`the run ended before the warm-up (${o.warmupMs / 1000} s) did`);
  let end = samples.length - 1;
  if (o.end === 'queue-empty') {
    const empty = samples.findIndex((s, i) => i > start && s.queued === 0);
    if (empty < 0) throw new Error('the queue never emptied');
    end = empty;
  }
  if (end - start < 2) {
    throw new Error(`the steady window is too short (${((samples[end]!.t - samples[start]!.t) / 1000).toFixed(1)} s): the units ran out during the warm-up; give more --units`);
  }
  const a = samples[start]!;
  const b = samples[end]!;
  const inside = samples.slice(start, end + 1);
  const mean = (f: (s: Sample) => number) => inside.reduce((n, s) => n + f(s), 0) / inside.length;
  const sum = (s: Sample, f: (w: Sample['workers'][number]) => number) => s.workers.reduce((n, w) => n + f(w), 0);
  const before = samples[Math.max(0, firstToken - 1)]!;
  return {
    from: (a.t - t0) / 1000,
    to: (b.t - t0) / 1000,
    seconds: (b.t - a.t) / 1000,
    tokensPerSec: (b.generated - a.generated) / ((b.t - a.t) / 1000),
    running: mean((s) => s.running),
    waiting: mean((s) => s.waiting),
    kv: mean((s) => s.kv),
    window: mean((s) => sum(s, (w) => w.window)),
    inFlight: mean((s) => sum(s, (w) => w.inFlight)),
    gateWaiting: mean((s) => sum(s, (w) => w.gateWaiting)),
    cpu: b.cpuTotal > a.cpuTotal ? (b.cpuBusy - a.cpuBusy) / (b.cpuTotal - a.cpuTotal) : 0,
    preemptionsPerSec: (b.preemptions - a.preemptions) / ((b.t - a.t) / 1000),
    fromStartTokensPerSec: (b.generated - before.generated) / ((b.t - t0) / 1000),
  };
}
