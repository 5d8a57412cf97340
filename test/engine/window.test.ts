import { describe, expect, it } from 'vitest';
import { WindowController, type WindowOptions } from '../../src/engine/window.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;

/** One OOM episode as vLLM produces it: every in-flight request fails, then refused, then back. */
function death(w: WindowController, now: number, failures: number, downMs = 20 * SECOND): number {
  for (let i = 0; i < failures; i++) w.onOom(now + i);
  w.onEngineDown(now + failures);
  const up = now + failures + downMs;
  w.onEngineUp(up);
  w.onCompleted(up + 500, 400); // a request sent after the restart succeeds: the episode ends
  return up + 500;
}

describe('WindowController basics', () => {
  it('starts at the initial size, probing, sending', () => {
    const w = new WindowController();
    expect([w.size, w.state, w.canSend, w.ceiling]).toEqual([16, 'probing', true, null]);
    expect(new WindowController({ initial: 500, max: 64 }).size).toBe(64);
  });

  it('rejects bad options naming the option', () => {
    expect(() => new WindowController({ min: 0 })).toThrow(/min/);
    expect(() => new WindowController({ max: 2, min: 4 })).toThrow(/max/);
    expect(() => new WindowController({ decreaseFactor: 1.2 })).toThrow(/decreaseFactor/);
    expect(() => new WindowController({ latencyGrowBelow: 4, latencyBackoffAbove: 3 })).toThrow(/latencyGrowBelow/);
  });

  it('pauses while the engine is down, keeping the size', () => {
    const w = new WindowController({ initial: 32 });
    w.onEngineDown(1000);
    expect([w.state, w.canSend, w.size]).toEqual(['paused', false, 32]);
    // Signals while paused change nothing.
    w.onMetrics(5000, { running: 0, waiting: 0 });
    w.tick(60_000);
    expect(w.size).toBe(32);
    w.onEngineUp(70_000);
    expect([w.state, w.canSend, w.size]).toEqual(['probing', true, 32]);
    expect(w.snapshot().lastChange?.reason).toMatch(/engine up/);
  });
});

describe('out of memory', () => {
  it('one death with 30 failing requests halves once', () => {
    const w = new WindowController({ initial: 64 });
    for (let i = 0; i < 30; i++) w.onOom(1000 + i);
    expect(w.size).toBe(32);
    expect(w.state).toBe('backoff');
    expect(w.ceiling).toBe(64);
    expect(w.snapshot()).toMatchObject({ ooms: 1, oomReports: 30 });
    // Still the same episode while down; after the restart, failures of requests sent before
    // the death (stragglers) do not count either.
    w.onEngineDown(2000);
    w.onOom(3000);
    w.onEngineUp(30_000);
    w.onOom(30_100, 900);
    expect(w.size).toBe(32);
    // A request sent after the restart that kills the engine again is a new episode, even with
    // no success in between: else a window that still kills the engine would never halve again.
    w.onOom(30_300, 30_050);
    expect(w.size).toBe(16);
    expect(w.snapshot().ooms).toBe(2);
  });

  it('ignores a straggler sent before the last halving', () => {
    const w = new WindowController({ initial: 64 });
    w.onOom(1000);
    w.onCompleted(5000, 1000); // sent at 4000, after the cut: episode over
    w.onOom(6000, 500); // sent at 500, before the cut at 1000
    expect(w.size).toBe(32);
    w.onOom(7000, 6500);
    expect(w.size).toBe(16);
  });

  it('an engine that answers out of memory without dying: a request sent after the cut that fails again halves again', () => {
    // vLLM V0 and other servers answer one request "CUDA out of memory" and stay up: no restart
    // closes the episode, and when the halved window still does not fit, nothing it sends
    // succeeds either. Each failure of a request sent after the latest cut is news.
    const w = new WindowController({ initial: 64 });
    w.onOom(1000, 900);
    expect(w.size).toBe(32);
    w.onOom(1001, 950); // a straggler of the first cut
    expect(w.size).toBe(32);
    w.onOom(1200, 1100); // sent at 1100, after the cut at 1000: the halved window failed too
    expect(w.size).toBe(16);
    w.onOom(1201, 1150); // sent before the cut at 1200: the same event
    w.onOom(1202); // no send time: folded into the open episode
    expect(w.size).toBe(16);
    expect(w.snapshot()).toMatchObject({ ooms: 2, oomReports: 5 });
  });

  it('inside an episode, a failure while the engine is known down is that outage; a death the health check saw first still halves', () => {
    const w = new WindowController({ initial: 64 });
    w.onOom(1000, 900);
    w.onEngineDown(1001);
    w.onOom(5000, 4000); // sent after the cut, into the outage (it waited on a rate limiter)
    expect(w.size).toBe(32);
    const seen = new WindowController({ initial: 64 });
    seen.onEngineDown(1000); // /health failed before any request did
    seen.onOom(1001, 900);
    expect(seen.size).toBe(32);
  });

  it('halving floors at 1 (and at min)', () => {
    const w = new WindowController({ initial: 4 });
    let now = 0;
    for (let i = 0; i < 5; i++) now = death(w, now + SECOND, 3);
    expect(w.size).toBe(1);
    expect(w.snapshot().ooms).toBe(5);
    const floored = new WindowController({ initial: 8, min: 3 });
    floored.onOom(1);
    expect(floored.size).toBe(4);
    floored.onCompleted(10, 1);
    floored.onOom(20);
    expect(floored.size).toBe(3);
  });

  it('halves the load that failed when the worker had not filled the window', () => {
    const w = new WindowController({ initial: 100 });
    w.setInFlight(40);
    w.onOom(1000);
    expect(w.size).toBe(20);
    expect(w.ceiling).toBe(40);
  });

  it('a request that fails alone says nothing about concurrency: no ceiling', () => {
    const w = new WindowController({ initial: 8 });
    w.setInFlight(1);
    w.onOom(1000);
    expect(w.size).toBe(1);
    expect(w.ceiling).toBeNull();
  });

  it('grows back +1 per clean interval, slower near the failing size', () => {
    const w = new WindowController({ initial: 20, cleanIntervalMs: 10 * SECOND, ceilingHoldMs: 60 * SECOND });
    let now = death(w, 0, 20);
    expect(w.size).toBe(10);
    const steps: number[] = [];
    let last = w.size;
    for (; now < 20 * MINUTE && w.size < 20; now += SECOND) {
      w.tick(now);
      if (w.size !== last) {
        steps.push(now);
        expect(w.size).toBe(last + 1);
        last = w.size;
      }
    }
    expect(w.size).toBe(20);
    const gaps = steps.slice(1).map((t, i) => t - steps[i]!);
    // 10 → 17 at one step per clean interval; 18, 19 (within 10% of 20) four times slower;
    // 20 itself only after sitting below it for the hold.
    expect(gaps.slice(0, 6).every((g) => g === 10 * SECOND)).toBe(true);
    expect(gaps.at(-2)).toBe(40 * SECOND);
    expect(gaps.at(-1)).toBe(60 * SECOND);
  });

  it('settles at or below a memory limit N, and grows back once the limit is lifted', () => {
    const N = 40;
    let limit = N;
    const w = new WindowController({ initial: 16, max: 256, cleanIntervalMs: 30 * SECOND, ceilingHoldMs: 5 * MINUTE });
    let ooms = 0;
    const sizes: number[] = [];
    let now = 0;
    const step = () => {
      now += SECOND;
      w.setInFlight(w.size);
      if (w.size > limit) {
        ooms++;
        now = death(w, now, w.size);
      } else {
        w.onMetrics(now, { running: w.size, waiting: 0 });
        if (now % (2 * SECOND) === 0) w.onCompleted(now, 1500);
      }
      w.tick(now);
      sizes.push(w.size);
    };
    while (now < 6 * 60 * MINUTE) step();
    const lastHours = sizes.slice(sizes.length / 3);
    const atOrBelow = lastHours.filter((s) => s <= N).length / lastHours.length;
    expect(atOrBelow).toBeGreaterThan(0.97);
    expect(Math.max(...lastHours)).toBeLessThanOrEqual(N + 1);
    expect(w.size).toBeLessThanOrEqual(N);
    expect(w.size).toBeGreaterThanOrEqual(N / 2);
    // Repeated probes of the same limit back off: few OOMs over hours.
    expect(ooms).toBeLessThan(15);

    limit = Number.POSITIVE_INFINITY;
    const lifted = now;
    while (now < lifted + 90 * MINUTE && w.size < 256) step();
    expect(w.size).toBe(256);
    expect(w.ceiling).toBeNull();
    expect(w.state).not.toBe('backoff');
  });

  it('a remembered ceiling (from an earlier run) holds the window below it', () => {
    const w = new WindowController({ initial: 16, ceiling: 24, cleanIntervalMs: SECOND, ceilingHoldMs: 10 * MINUTE });
    expect(w.state).toBe('backoff');
    for (let now = 0; now < 5 * MINUTE; now += SECOND) {
      w.onMetrics(now, { running: w.size, waiting: 0 });
      w.tick(now);
    }
    expect(w.size).toBe(23);
  });
});

describe('growth and backoff from /metrics', () => {
  const run = (w: WindowController, from: number, seconds: number, engine: (now: number) => { running: number; waiting: number }) => {
    let now = from;
    for (let i = 0; i < seconds; i++, now += SECOND) {
      w.setInFlight(w.size);
      w.onMetrics(now, engine(now));
      w.tick(now);
    }
    return now;
  };

  it('grows fast while the engine has room, holds with a small queue, cuts a big one', () => {
    const w = new WindowController({ initial: 16, max: 1024 });
    const capacity = 300; // max_num_seqs: beyond it requests wait
    const engine = () => ({ running: Math.min(w.size, capacity), waiting: Math.max(0, w.size - capacity) });
    let now = run(w, 0, 4, engine);
    expect(w.size).toBeGreaterThanOrEqual(64); // 16 → 32 → 64 in two decisions
    expect(w.state).toBe('probing');
    now = run(w, now, 120, engine);
    // Settled just above capacity: a queue of about the target (3% of 300 running), never a big one.
    expect(w.size).toBeGreaterThanOrEqual(capacity + 1);
    expect(w.size).toBeLessThanOrEqual(capacity + 9 + 1);
    expect(w.state).toBe('steady');
    // Another tenant takes 200 slots: the queue grows, the window gives them back.
    const shared = () => ({ running: capacity, waiting: Math.max(0, w.size + 200 - capacity) });
    run(w, now, 60, shared);
    // Our share of a queue of size - 100, (size - 100) × size / (size + 200), is the target (9)
    // near 124.
    expect(w.size).toBeLessThanOrEqual(130);
    expect(w.size).toBeGreaterThanOrEqual(118);
    expect(w.snapshot().lastChange?.reason).toMatch(/queue|room/);
  });

  it('cuts at most once per response time', () => {
    const w = new WindowController({ initial: 100 });
    w.onCompleted(0, 10_000); // requests take ~10 s
    w.onMetrics(1000, { running: 50, waiting: 200 });
    const after = w.size;
    expect(after).toBeLessThan(100);
    for (let t = 3000; t < 10_000; t += 1000) w.onMetrics(t, { running: 50, waiting: 200 });
    expect(w.size).toBe(after);
    w.onMetrics(12_000, { running: 50, waiting: 200 });
    expect(w.size).toBeLessThan(after);
  });

  it('does not grow a window the worker is not filling, nor when requests do not reach the engine', () => {
    const w = new WindowController({ initial: 16 });
    w.setInFlight(5);
    for (let t = 0; t < 20_000; t += 1000) w.onMetrics(t, { running: 5, waiting: 0 });
    expect(w.size).toBe(16);
    w.setInFlight(16);
    // Sixteen sent, two at the engine: stuck in front of it (e.g. image preprocessing).
    for (let t = 20_000; t < 40_000; t += 1000) w.onMetrics(t, { running: 2, waiting: 0 });
    expect(w.size).toBe(16);
    // Requests not at the engine yet say nothing about its room: the window waits, still probing.
    expect(w.state).toBe('probing');
    w.onMetrics(40_000, { running: 16, waiting: 0 });
    expect(w.size).toBe(32);
  });

  it('a queue while the engine is still admitting is a backlog: probing waits for it, then goes on', () => {
    const w = new WindowController({ initial: 54 });
    w.setInFlight(54);
    w.onMetrics(0, { running: 54, waiting: 0 });
    expect(w.size).toBe(108);
    w.setInFlight(108);
    // The 54 new requests are admitted a few per step (the token budget): a queue, but running climbs.
    w.onMetrics(1000, { running: 60, waiting: 48 });
    w.onMetrics(2000, { running: 80, waiting: 28 });
    expect([w.size, w.state]).toEqual([108, 'probing']);
    w.onMetrics(3000, { running: 108, waiting: 0 });
    expect([w.size, w.state]).toEqual([216, 'probing']);
    // A queue with running flat is a full engine: cut by our share of it.
    w.setInFlight(216);
    w.onMetrics(4000, { running: 200, waiting: 16 });
    w.onMetrics(5000, { running: 200, waiting: 16 });
    expect(w.size).toBe(206); // 216 - (16 - 3% of 200)
    expect(w.state).toBe('steady');
  });

  it('a short queue (requests that arrived during a step) is room while probing, and +1 once steady', () => {
    const w = new WindowController({ initial: 32, max: 1024 });
    w.setInFlight(32);
    w.onMetrics(0, { running: 31, waiting: 1 });
    expect([w.size, w.state]).toEqual([64, 'probing']);
    w.setInFlight(64);
    w.onMetrics(1000, { running: 63, waiting: 1 });
    expect([w.size, w.state]).toEqual([128, 'probing']);
    // Steady (on target, running flat), a short queue is +1.
    const s = new WindowController({ initial: 64 });
    s.setInFlight(64);
    s.onMetrics(0, { running: 62, waiting: 2 });
    expect([s.size, s.state]).toEqual([64, 'steady']);
    s.onMetrics(2000, { running: 63, waiting: 1 });
    expect(s.size).toBe(65);
    expect(s.snapshot().lastChange?.reason).toMatch(/short: \+1/);
  });

  it('while probing, a backlog the engine admits before the next decision is room; a longer one is waited for', () => {
    const w = new WindowController({ initial: 64 });
    w.setInFlight(64);
    w.onMetrics(0, { running: 0, waiting: 0 }); // nothing at the engine yet: no verdict
    w.onMetrics(1000, { running: 20, waiting: 44 }); // 20 admitted in a second, 44 left: wait
    w.onMetrics(2000, { running: 35, waiting: 29 }); // 15 admitted, 29 left: wait
    expect([w.size, w.state]).toEqual([64, 'probing']);
    w.onMetrics(3000, { running: 58, waiting: 6 }); // 23 admitted, 6 left: gone by the next decision
    expect([w.size, w.state]).toEqual([128, 'probing']);
  });

  it('counts an excess once: no second cut while the requests above the first are still queued', () => {
    const w = new WindowController({ initial: 60 });
    w.setInFlight(60);
    w.onMetrics(0, { running: 40, waiting: 20 });
    expect(w.size).toBe(42); // 60 - (20 - 2)
    // Nothing has finished yet (requests take 15 s): the same 60 are at the engine, the same queue.
    for (let t = 2000; t < 14_000; t += 2000) w.onMetrics(t, { running: 40, waiting: 20 });
    expect(w.size).toBe(42);
    expect(w.snapshot().lastChange?.reason).toMatch(/too long: cut/);
  });

  it('steps back while the engine preempts, and not for a restarted counter', () => {
    const w = new WindowController({ initial: 133 });
    w.setInFlight(133);
    w.onMetrics(0, { running: 131, waiting: 4, preemptionsTotal: 40 });
    expect(w.size).toBe(133); // on target (3% of 131); the first counter is a baseline
    w.onMetrics(2000, { running: 131, waiting: 4, preemptionsTotal: 43 });
    expect(w.size).toBe(132);
    expect(w.snapshot().lastChange?.reason).toMatch(/preempting/);
    w.setInFlight(132);
    w.onMetrics(4000, { running: 130, waiting: 4, preemptionsTotal: 43 });
    expect(w.size).toBe(132);
    // The engine restarted: its counters begin again from zero.
    w.onMetrics(6000, { running: 130, waiting: 4, preemptionsTotal: 1 });
    expect(w.size).toBe(132);
  });

  it('a preemption now and then (the KV cache at its edge) holds; only frequent ones step back', () => {
    const steady = new WindowController({ initial: 70 });
    steady.setInFlight(70);
    steady.onMetrics(0, { running: 68, waiting: 2, preemptionsTotal: 5 }); // on target: steady
    steady.onMetrics(2000, { running: 70, waiting: 0, preemptionsTotal: 6 });
    expect(steady.size).toBe(70);
    expect(steady.snapshot().lastChange?.reason ?? '').not.toMatch(/-1/);
    steady.onMetrics(4000, { running: 70, waiting: 0, preemptionsTotal: 9 });
    expect(steady.size).toBe(69);
    expect(steady.snapshot().lastChange?.reason).toMatch(/preempting/);
  });

  it('does not grow when the KV cache is nearly full', () => {
    const w = new WindowController({ initial: 16 });
    for (let t = 0; t < 20_000; t += 1000) w.onMetrics(t, { running: 16, waiting: 0, kvCacheUsage: 0.97 });
    expect(w.size).toBe(16);
  });

  it('several workers on one engine converge to fair shares instead of fighting', () => {
    const capacity = 240;
    const workers = [new WindowController({ initial: 8, max: 512 }), new WindowController({ initial: 150, max: 512 }), new WindowController({ initial: 40, max: 512 })];
    const history: number[] = [];
    for (let t = 0; t < 20 * MINUTE; t += SECOND) {
      const total = workers.reduce((acc, w) => acc + w.size, 0);
      const m = { running: Math.min(total, capacity), waiting: Math.max(0, total - capacity) };
      for (const w of workers) {
        w.setInFlight(w.size);
        w.onCompleted(t, 1000);
        w.onMetrics(t, m);
        w.tick(t);
      }
      history.push(total);
    }
    const sizes = workers.map((w) => w.size);
    const total = sizes.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThanOrEqual(capacity - 10);
    // The engine full plus each worker's target (3% of 240 running) queued.
    expect(total).toBeLessThanOrEqual(capacity + 3 * 0.03 * capacity + 3);
    expect(Math.max(...sizes) / Math.min(...sizes)).toBeLessThanOrEqual(1.3);
    // And the engine stays busy in the last ten minutes: no sawtooth down to idle.
    expect(Math.min(...history.slice(-600))).toBeGreaterThanOrEqual(capacity - 20);
  });

  it('an overloaded answer (429, "server busy") shrinks', () => {
    const w = new WindowController({ initial: 64 });
    w.onBusy(1000);
    expect(w.size).toBe(48);
    expect(w.state).toBe('steady');
    w.onBusy(1500); // same response time
    expect(w.size).toBe(48);
  });
});

describe('growth and backoff from latency (no /metrics)', () => {
  const feed = (w: WindowController, from: number, n: number, latency: (size: number) => number) => {
    let now = from;
    for (let i = 0; i < n; i++) {
      now += 300;
      w.setInFlight(w.size);
      w.onCompleted(now, latency(w.size));
      w.tick(now);
    }
    return now;
  };

  it('grows while latency stays near the best, holds when it climbs, shrinks when it soars', () => {
    const options: WindowOptions = { initial: 8, max: 256 };
    const w = new WindowController(options);
    let now = feed(w, 0, 200, () => 1000);
    expect(w.size).toBeGreaterThan(64);
    const grown = w.size;
    now = feed(w, now, 100, () => 2000);
    expect(w.size).toBe(grown);
    expect(w.state).toBe('steady');
    feed(w, now, 30, () => 4000);
    expect(w.size).toBeLessThan(grown);
    expect(w.snapshot().lastChange?.reason).toMatch(/latency 4\.0× the best: climbing/);
  });

  it('re-bases when a cut does not bring the latency down (heavier inputs, not us)', () => {
    const w = new WindowController({ initial: 32, max: 256 });
    let now = feed(w, 0, 40, () => 1000);
    const before = w.size;
    // Every request now takes 5× longer whatever the window: denser pages.
    now = feed(w, now, 400, () => 5000);
    expect(w.size).toBeGreaterThanOrEqual(before * 0.75 - 1);
    expect(w.snapshot().bestLatency).toBe(5000);
    expect(w.snapshot().bestLatencyUnit).toBe('ms');
  });

  it('answers with and without their token counts: latency per token and whole latency are never one median', () => {
    // An engine with room: every answer takes 2 s for its 100 tokens (20 ms a token), but about
    // half of them, in no order, come without usage (a gateway that drops it).
    const w = new WindowController({ initial: 8, max: 64 });
    let now = 0;
    const reasons: string[] = [];
    for (let i = 0; i < 400; i++) {
      now += 150;
      w.setInFlight(w.size);
      w.onCompleted(now, 2000, (i * 7919) % 13 < 6 ? undefined : 100);
      w.tick(now);
      const c = w.snapshot().lastChange;
      if (c && c.at === now) reasons.push(c.reason);
    }
    expect(reasons.filter((r) => /climbing|cut/.test(r))).toEqual([]);
    expect(w.size).toBe(64);
    expect(w.snapshot()).toMatchObject({ bestLatency: 20, bestLatencyUnit: 'ms/token' });
  });

  it('finds the knee of a queueing engine and stays near it', () => {
    // An engine that batches up to 64 requests at 1 s each, and queues the rest.
    const latency = (size: number) => 1000 * Math.max(1, size / 64);
    const w = new WindowController({ initial: 4, max: 512 });
    feed(w, 0, 3000, latency);
    expect(w.size).toBeGreaterThanOrEqual(48);
    expect(w.size).toBeLessThanOrEqual(64 * 3);
  });

  it('answers of varied lengths: queueing that a cut does not reduce is not ours, and the window keeps its size', () => {
    // Another tenant keeps the engine's queue long: every answer waited 6 s, whatever our window.
    const w = new WindowController({ initial: 64, max: 256 });
    w.setInFlight(64);
    let i = 0;
    for (let now = 0; now < 5 * MINUTE; now += 100) {
      const tokens = 150 + ((i++ * 37) % 300);
      w.setInFlight(w.size);
      w.onCompleted(now, 6000 + 20 * tokens, tokens);
      if (now % SECOND === 0) w.tick(now);
    }
    expect(w.size).toBeGreaterThanOrEqual(64);
    expect(w.snapshot().lastChange?.reason ?? '').toMatch(/not ours/);
  });

  it('uses /metrics instead while they are fresh', () => {
    const w = new WindowController({ initial: 16 });
    w.onMetrics(0, { running: 16, waiting: 2 }); // a queue on target: hold
    for (let i = 1; i <= 20; i++) w.onCompleted(i * 100, 100);
    expect(w.size).toBe(16);
  });
});

describe('snapshot', () => {
  it('is a copy with the last change and its reason', () => {
    const w = new WindowController({ initial: 10 });
    w.setInFlight(7);
    w.onOom(5);
    const snap = w.snapshot();
    expect(snap).toEqual({
      size: 3,
      state: 'backoff',
      canSend: true,
      ceiling: 7,
      ooms: 1,
      oomReports: 1,
      inFlight: 7,
      bestLatency: null,
      bestLatencyUnit: null,
      lastChange: { at: 5, from: 10, to: 3, reason: 'out of memory: halved' },
    });
    snap.lastChange!.to = 99;
    expect(w.snapshot().lastChange?.to).toBe(3);
  });
});
