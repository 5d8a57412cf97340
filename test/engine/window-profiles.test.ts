/**
 * The window controller against every engine profile, pure: the emulator's own scheduler on a
 * virtual clock, driven by simulated workers that feed a real WindowController as src/infer/
 * does (test/engine/engine-sim.ts). Each figure counts as bench/throughput.ts does, from the
 * first request to the last answer, ramp included, against the engine's own best on the same
 * requests: a closed loop at its ideal concurrency.
 *
 * The workload is bench/throughput.ts's: ~3.3k-token chat chunks (1.5k-5k), replies capped at
 * 1024 tokens, 600 of them, at speed 4 (the controller's cadences stay in real milliseconds).
 */
import { describe, expect, it } from 'vitest';
import type { EngineProfile } from '../../src/emulator/options.ts';
import { engineBest, pipeline, profileEngine, simRequests, type SimRun } from './engine-sim.ts';

const SPEED = 4;
const UNITS = 600;

const scenarios = new Map<string, ReturnType<typeof makeScenario>>();

/** One profile's requests and the engine's best on them (computed once per file). */
function scenario(profile: EngineProfile, units = UNITS) {
  const key = `${profile}/${units}`;
  let s = scenarios.get(key);
  if (!s) scenarios.set(key, (s = makeScenario(profile, units)));
  return s;
}

function makeScenario(profile: EngineProfile, units: number) {
  const target = profileEngine(profile, { speed: SPEED });
  const requests = simRequests(target, units, { promptMin: 1500, promptMax: 5000, maxTokens: 1024 });
  const best = engineBest(target, requests);
  const run = (workers: number): SimRun & { ratio: number } => {
    const r = pipeline(target, requests, { workers });
    return { ...r, ratio: best.spanMs / r.spanMs };
  };
  return { best, run };
}

/** The first trace time (s) at which the summed windows reached `size`, or null. */
function reached(run: SimRun, size: number): number | null {
  const at = run.trace.find((s) => s.window >= size);
  return at ? at.t / 1000 : null;
}

describe.each([1, 4])('%i worker(s) keep every engine at ≥ 0.95 of its own best', (workers) => {
  it.each(['vllm', 'admit-all', 'kv-preempt', 'slow-prefill', 'mixed-outputs', 'no-metrics'] as EngineProfile[])('%s', (profile) => {
    const { best, run } = scenario(profile);
    const r = run(workers);
    expect(r.ratio, `${profile}, ${workers} worker(s): ${r.ratio.toFixed(3)} of the best (C=${best.concurrency})`).toBeGreaterThanOrEqual(0.95);
  });
});

describe('what the controller does on each kind of engine', () => {
  it('admit-all (no queue until maxNumSeqs): the window doubles each second to all 256 seats', () => {
    const { best, run } = scenario('admit-all');
    expect(best.concurrency).toBeGreaterThanOrEqual(256);
    const r = run(1);
    // 16 → 32 → 64 → 128 → 256: about four metrics samples once the first requests are in.
    expect(reached(r, 256)).not.toBeNull();
    expect(reached(r, 256)!).toBeLessThanOrEqual(6);
    expect(r.windows[0]).toBeGreaterThan(230);
  });

  it('kv-preempt: the window settles near the KV limit, not at the engine\'s 256 seats', () => {
    const { best, run } = scenario('kv-preempt');
    const r = run(1);
    expect(r.windows[0]).toBeGreaterThan(0.8 * best.concurrency);
    expect(r.windows[0]).toBeLessThan(1.5 * best.concurrency);
  });

  it('slow-prefill: a backlog being admitted (running climbing) cuts nothing', () => {
    const { run } = scenario('slow-prefill');
    const r = run(1);
    const cutWhileClimbing = r.changes.filter((c) => /still admitting/.test(c) && /cut|-1/.test(c));
    expect(cutWhileClimbing).toEqual([]);
  });

  it('mixed outputs, four workers: the engine queue stays short while the windows follow the moving limit', () => {
    const { run } = scenario('mixed-outputs');
    const r = run(4);
    const busy = r.trace.filter((s) => s.running > 0);
    const meanWaiting = busy.reduce((n, s) => n + s.waiting, 0) / busy.length;
    expect(meanWaiting).toBeLessThan(20);
  });

  it('no-metrics: blind growth fills the engine at once; the answers then trim the queue to near the limit', () => {
    const { best, run } = scenario('no-metrics', 2400);
    const r = run(1);
    expect(reached(r, 256)!).toBeLessThanOrEqual(6);
    expect(r.changes.some((c) => /answers: .* too long: cut/.test(c))).toBe(true);
    // The last third of the run: near the engine's limit, a queue of a few tenths of it at most.
    const late = r.trace.slice(Math.floor((2 * r.trace.length) / 3)).filter((s) => s.running > 0);
    const window = late.reduce((n, s) => n + s.window, 0) / late.length;
    expect(window).toBeGreaterThan(0.9 * best.concurrency);
    expect(window).toBeLessThan(1.6 * best.concurrency);
  });
});
