/**
 * A pure simulation of workers against an engine: the emulator's own scheduler
 * (src/emulator/engine.ts) on a virtual clock (src/emulator/virtual-clock.ts), fed either by a
 * closed loop of C clients (the engine's own best) or by simulated workers, each steered by a
 * real WindowController the way src/infer/ feeds it. No I/O, no real time: a run of thousands of
 * requests takes milliseconds, and the same seed gives the same figures.
 *
 * What a simulated worker does, as the real one (src/infer/worker.ts, gate.ts, dispatch.ts,
 * engine-monitor.ts):
 * - sends a unit whenever it has fewer than `window.size` in flight (units are prepared ahead,
 *   taken from one shared FIFO queue as BullMQ hands them out), reporting `setInFlight` on every
 *   send and finish;
 * - on each answer: `onCompleted(now, latency, completionTokens)`, then frees the slot;
 * - every `metricsIntervalMs`: `onMetrics` with the engine's gauges and preemption counter
 *   (unless the engine has no /metrics), then `tick`, then sends what the window allows.
 *
 * Figures count as bench/throughput.ts does, from the engine's side: the first request's arrival
 * to the last answer; the tokens are the same in every run (same requests, deterministic lengths).
 */
import { ENGINE_PROFILES, resolveOptions, timingOf, type EmulatorOptions, type EngineProfile } from '../../src/emulator/options.ts';
import { outputLength } from '../../src/emulator/reply.ts';
import { SIM_DELAYS, simEngine, simSend, simSpan, simulateBestConcurrency, type SimDelays, type SimRequest, type SimSpan } from '../../src/emulator/simulate.ts';
import { VirtualClock } from '../../src/emulator/virtual-clock.ts';
import { WindowController, type WindowOptions } from '../../src/engine/window.ts';

export type { SimRequest } from '../../src/emulator/simulate.ts';

export interface SimTarget {
  options: EmulatorOptions;
  delays: SimDelays;
}

export interface SimRun extends SimSpan {
  /** Every metrics interval: engine running and waiting, KV use, the workers' windows and in flight summed. */
  trace: { t: number; running: number; waiting: number; window: number; inFlight: number; kv: number }[];
  /** Mean window per worker over the run, and the final states. */
  windows: number[];
  states: string[];
  /** Reasons of window changes (the first 300), for reading a scenario. */
  changes: string[];
}

/** The engine of a profile, as `docbatch engine --profile NAME` builds it, plus `extra`. */
export function profileEngine(profile: EngineProfile, extra: Partial<EmulatorOptions> = {}, delays: SimDelays = SIM_DELAYS): SimTarget {
  return { options: resolveOptions({ ...ENGINE_PROFILES[profile], ...extra }), delays };
}

/** xorshift32 from a seed, in [0, 1). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

/**
 * `n` requests with prompts uniform in [promptMin, promptMax] tokens and the engine's reply
 * lengths (drawn from a seed per request as the emulator draws them), capped at `maxTokens` as
 * the worker's max_tokens caps them.
 */
export function simRequests(target: SimTarget, n: number, o: { promptMin: number; promptMax: number; maxTokens: number; seed?: number }): SimRequest[] {
  const rand = rng(o.seed ?? 7);
  const timing = timingOf(target.options);
  return Array.from({ length: n }, () => {
    const seed = Buffer.alloc(12);
    for (let i = 0; i < 12; i += 4) seed.writeUInt32BE(Math.floor(rand() * 2 ** 32), i);
    const promptTokens = Math.round(o.promptMin + rand() * (o.promptMax - o.promptMin));
    return { promptTokens, outputTokens: Math.min(outputLength(seed, timing), o.maxTokens) };
  });
}

/** The engine's own best on these requests: a closed loop at its ideal concurrency. */
export function engineBest(target: SimTarget, requests: readonly SimRequest[]): SimSpan & { concurrency: number } {
  const { concurrency, best } = simulateBestConcurrency(target.options, requests, target.delays);
  return { ...best, concurrency };
}

export interface PipelineSim {
  workers: number;
  window?: WindowOptions;
  /** How often each worker reads /metrics and ticks. @defaultValue 1000 */
  metricsIntervalMs?: number;
  /** Delay between one worker's start and the next's first unit, ms. @defaultValue 0 */
  staggerMs?: number;
}

/** Simulated workers sharing one engine, with their window controllers. */
export function pipeline(target: SimTarget, requests: readonly SimRequest[], p: PipelineSim): SimRun {
  const clock = new VirtualClock();
  const engine = simEngine(target.options, clock);
  const metrics = !target.options.noMetrics;
  const interval = p.metricsIntervalMs ?? 1000;
  let next = 0;
  let done = 0;
  const changes: string[] = [];
  const workers = Array.from({ length: p.workers }, (_, i) => {
    const window = new WindowController({ initial: 16, max: 256, ...p.window });
    window.setInFlight(0);
    return { i, window, inFlight: 0, windowSum: 0, samples: 0, lastChange: null as number | null };
  });
  type W = (typeof workers)[number];
  const note = (w: W): void => {
    const c = w.window.snapshot().lastChange;
    if (c && c.at !== w.lastChange && changes.length < 300) changes.push(`w${w.i} ${(c.at / 1000).toFixed(1)}s ${c.from}→${c.to} ${c.reason}`);
    if (c) w.lastChange = c.at;
  };
  const pump = (w: W): void => {
    while (w.window.canSend && w.inFlight < w.window.size && next < requests.length) {
      const r = requests[next++]!;
      const sentAt = clock.now();
      w.inFlight++;
      w.window.setInFlight(w.inFlight);
      simSend(engine, clock, target.delays, r, () => {
        w.window.onCompleted(clock.now(), clock.now() - sentAt, r.outputTokens);
        w.inFlight--;
        w.window.setInFlight(w.inFlight);
        done++;
        note(w);
        pump(w);
      });
    }
  };
  const trace: SimRun['trace'] = [];
  for (const w of workers) {
    const start = w.i * (p.staggerMs ?? 0);
    const monitor = (): void => {
      if (done === requests.length) return;
      const now = clock.now();
      if (metrics) {
        const g = engine.gauges();
        w.window.onMetrics(now, { running: g.running, waiting: g.waiting, kvCacheUsage: g.kvUsage, preemptionsTotal: engine.counters.preemptions });
      }
      w.window.tick(now);
      note(w);
      w.windowSum += w.window.size;
      w.samples++;
      pump(w);
      if (w.i === 0) {
        const g = engine.gauges();
        trace.push({ t: now, running: g.running, waiting: g.waiting, kv: g.kvUsage, window: workers.reduce((n, x) => n + x.window.size, 0), inFlight: workers.reduce((n, x) => n + x.inFlight, 0) });
      }
      clock.setTimer(monitor, interval);
    };
    // The monitor's first read comes at start, as EngineMonitor.start() does (setTimeout 0).
    clock.setTimer(() => {
      monitor();
      pump(w);
    }, start + ((w.i * 137) % interval));
    clock.setTimer(() => pump(w), start);
  }
  clock.run(() => done === requests.length);
  return {
    ...simSpan(engine, requests),
    trace,
    windows: workers.map((w) => (w.samples ? w.windowSum / w.samples : 0)),
    states: workers.map((w) => w.window.state),
    changes,
  };
}
