/**
 * The worker's background steps: those it repeats (feeding, heartbeat, budget, idle, following
 * its engines) and the rechecks 5 s after a fault. Every timer is unref'd (none keeps the process
 * up) and all are cleared at once when the worker stops; a repeated step is skipped once it is
 * stopping, and a failed one is logged, never an unhandled rejection.
 */
import type { Logger } from '../observe/log.ts';

export class BackgroundTimers {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly log: Logger;
  /** True once the worker is stopping: repeated steps no longer run. */
  private readonly stopping: () => boolean;

  constructor(log: Logger, stopping: () => boolean) {
    this.log = log;
    this.stopping = stopping;
  }

  once5s(fn: () => Promise<void>): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      void fn();
    }, 5000);
    t.unref();
    this.timers.add(t);
  }

  every(ms: number, fn: () => Promise<void> | void): void {
    const t = setInterval(() => {
      if (!this.stopping()) void Promise.resolve(fn()).catch((err: Error) => this.log.debug({ err: err.message }, 'background step failed'));
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  clear(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
