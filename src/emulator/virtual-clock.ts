/**
 * A virtual clock for the engine (EngineClock): time moves only when `run` pops the next timer,
 * so the emulator's scheduler runs as a discrete-event simulation, without real time or I/O.
 * Simulations of clients and workers (test/engine/engine-sim.ts) put their own events on it.
 *
 *     const clock = new VirtualClock();
 *     const engine = new Engine(limits, settings, clock);
 *     clock.setTimer(() => engine.submit(...), 0);
 *     clock.run(() => done);        // until `done` or no event is left
 *
 * Events at the same time run in the order they were set (deferrals after the running event).
 */
import type { EngineClock } from './engine.ts';

interface Timer {
  at: number;
  order: number;
  fn: () => void;
  cancelled: boolean;
}

export class VirtualClock implements EngineClock {
  private time = 0;
  private order = 0;
  private readonly heap: Timer[] = [];

  now(): number {
    return this.time;
  }

  setTimer(fn: () => void, ms: number): Timer {
    const timer: Timer = { at: this.time + Math.max(0, ms), order: this.order++, fn, cancelled: false };
    this.push(timer);
    return timer;
  }

  clearTimer(handle: unknown): void {
    if (handle) (handle as Timer).cancelled = true;
  }

  defer(fn: () => void): void {
    this.setTimer(fn, 0);
  }

  /** Runs events in time order until `stop()` is true, `until` (ms) is passed, or none is left. Returns the time. */
  run(stop: () => boolean = () => false, until = Number.POSITIVE_INFINITY): number {
    while (!stop()) {
      const next = this.pop();
      if (!next) break;
      if (next.at > until) {
        this.push(next);
        this.time = until;
        break;
      }
      this.time = next.at;
      next.fn();
    }
    return this.time;
  }

  private before(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order);
  }

  private push(t: Timer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private pop(): Timer | undefined {
    const h = this.heap;
    for (;;) {
      const top = h[0];
      if (!top) return undefined;
      const last = h.pop()!;
      if (h.length > 0) {
        h[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          if (l < h.length && this.before(h[l]!, h[m]!)) m = l;
          if (r < h.length && this.before(h[r]!, h[m]!)) m = r;
          if (m === i) break;
          [h[i], h[m]] = [h[m]!, h[i]!];
          i = m;
        }
      }
      if (!top.cancelled) return top;
    }
  }
}
