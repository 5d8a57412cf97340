/**
 * Whether the worker takes units, and why not: intake pauses for any of its reasons (the engine
 * down, a fault of this worker's environment, the budget spent, Redis full, stopping) and resumes
 * once none is left. Pausing pauses every unit loop (those in flight finish); a fault of the
 * environment or Redis full is said once, rechecked every 5 s, and intake resumes when it passes.
 */
import type { TypedWorker } from '../../queues/connect.ts';
import { redisFullProblem } from '../../queues/redis-link.ts';
import type { DocbatchError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import type { BackgroundTimers } from './timers.ts';

export type PauseReason = 'engine' | 'environment' | 'budget' | 'redis' | 'closing';

/** What intake acts on and tells: the worker's. */
export interface IntakeHooks {
  log: Logger;
  redisUrl: string;
  timers: BackgroundTimers;
  /** The unit loops, one per queue served. */
  loops: () => Iterable<TypedWorker<'infer'>>;
  /** True once the worker is stopping: intake no longer resumes, rechecks end. */
  stopping: () => boolean;
  heartbeat: () => Promise<void>;
  /** The environment checks again (worker-checks.ts); throws while they fail. */
  recheckEnvironment: () => Promise<void>;
  paused: (reasons: string[]) => void;
  resumed: () => void;
}

export class Intake {
  private readonly hooks: IntakeHooks;
  private readonly paused = new Map<PauseReason, string>();
  private environmentError: DocbatchError | null = null;

  constructor(hooks: IntakeHooks) {
    this.hooks = hooks;
  }

  /** Why intake is paused (empty while it runs). */
  get reasons(): string[] {
    return [...this.paused.keys()];
  }

  get isPaused(): boolean {
    return this.paused.size > 0;
  }

  has(reason: PauseReason): boolean {
    return this.paused.has(reason);
  }

  /** The environment fault that stopped intake, if any. */
  get unhealthy(): DocbatchError | null {
    return this.environmentError;
  }

  /** Stopping: paused for good (the unit loops are paused by the close itself). */
  markClosing(): void {
    this.paused.set('closing', 'stopping');
  }

  pause(reason: PauseReason, why: string): void {
    const was = this.paused.size;
    this.paused.set(reason, why);
    if (was === 0) {
      for (const bull of this.hooks.loops()) void bull.pause(true);
      this.hooks.paused(this.reasons);
    }
    if (reason !== 'closing') void this.hooks.heartbeat().catch(() => undefined);
  }

  resume(reason: PauseReason): void {
    if (!this.paused.delete(reason) || this.paused.size > 0 || this.hooks.stopping()) return;
    for (const bull of this.hooks.loops()) bull.resume();
    this.hooks.resumed();
    void this.hooks.heartbeat().catch(() => undefined);
  }

  /** A fault of this worker's own: stop taking work, recheck every few seconds, resume when it passes. */
  onEnvironmentError(err: DocbatchError): void {
    if (this.environmentError) return;
    const { log, timers } = this.hooks;
    this.environmentError = err;
    log.error({ code: err.code, err: err.message }, 'this worker cannot do its work: intake stopped, units handed back; rechecking every 5 s');
    this.pause('environment', err.message);
    const recheck = async () => {
      if (this.hooks.stopping()) return;
      try {
        await this.hooks.recheckEnvironment();
        this.environmentError = null;
        log.info('environment checks pass again: taking work');
        this.resume('environment');
      } catch (again) {
        log.debug({ err: (again as Error).message }, 'environment still failing');
        timers.once5s(recheck);
      }
    };
    timers.once5s(recheck);
  }

  /**
   * Redis at its maxmemory refuses BullMQ's scripts, and BullMQ asks again at once (thousands of
   * errors a second): stop intake (`/health` fails), say it once, and take work again once a
   * write (the heartbeat) goes through.
   */
  onRedisFull(err: Error): void {
    if (this.paused.has('redis') || this.hooks.stopping()) return;
    const { log, timers } = this.hooks;
    const problem = redisFullProblem(err, this.hooks.redisUrl)!;
    log.error({ code: problem.code, err: problem.message }, 'Redis is full: intake stopped; rechecking every 5 s');
    this.pause('redis', problem.message);
    const recheck = async () => {
      if (this.hooks.stopping()) return;
      try {
        await this.hooks.heartbeat();
        log.info('Redis accepts writes again: taking work');
        this.resume('redis');
      } catch (again) {
        log.debug({ err: (again as Error).message }, 'Redis still refuses writes');
        timers.once5s(recheck);
      }
    };
    timers.once5s(recheck);
  }
}
