/**
 * Answers held while Redis is full. Redis at its maxmemory (policy noeviction) refuses writes
 * ("OOM command not allowed"); a unit whose answer comes back then keeps it and records it once
 * Redis has room, instead of failing (one of its attempts used, the GPU work done again).
 *
 * - `record(write)` runs `write` and, while it fails because Redis is full, tries again every
 *   `retryMs`. `write` is told whether it runs again, since a write that failed half-way (its
 *   result recorded, what it made due not) must finish that part (settle.ts's ensureDue).
 * - Bounded: a held answer belongs to a unit still in flight, and the worker stops taking units
 *   while Redis is full, so what is held is at most the worker's intake (window + BATCH_SIZE).
 * - `stop()` (the worker forced to stop: its drain deadline passed, or a second signal) ends every
 *   hold with REDIS_FULL: nothing is recorded, the unit's lock expires and the stalled check gives
 *   it to a worker, which runs it again. Never lost, never recorded twice.
 * - Said once when the first answer is held and once when the last is recorded, not per unit.
 */
import { isRedisFull, redisFullProblem } from '../../queues/redis-link.ts';
import { DocbatchError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';

export interface AnswerHoldOptions {
  log: Logger;
  /** Shown in REDIS_FULL messages (password masked). */
  redisUrl: string;
  /** Redis refused a write for want of memory: the worker stops taking units. */
  onFull: (err: Error) => void;
  /** How often a held answer tries again. @defaultValue 1000 */
  retryMs?: number;
}

export class AnswerHold {
  private readonly options: AnswerHoldOptions;
  private readonly retryMs: number;
  private readonly stopping = new AbortController();
  private holding = 0;
  /** Answers held, and those of them recorded, since the first of the current burst. */
  private burst = { held: 0, recorded: 0 };

  constructor(options: AnswerHoldOptions) {
    if (options.retryMs !== undefined && !(Number.isFinite(options.retryMs) && options.retryMs > 0)) {
      throw new TypeError(`AnswerHold: retryMs must be a positive number of milliseconds, not ${String(options.retryMs)}`);
    }
    this.options = options;
    this.retryMs = options.retryMs ?? 1000;
  }

  /** Answers held now. */
  get size(): number {
    return this.holding;
  }

  /** Runs `write` until it goes through, holding on while Redis is full (see the top of the file). */
  async record<T>(write: (again: boolean) => Promise<T>): Promise<T> {
    let held = false;
    let recorded = false;
    try {
      for (let again = false; ; again = true) {
        try {
          const out = await write(again);
          recorded = true;
          return out;
        } catch (err) {
          if (!isRedisFull(err)) throw err;
          this.options.onFull(err as Error);
          if (this.stopping.signal.aborted) {
            throw new DocbatchError('REDIS_FULL', `${redisFullProblem(err, this.options.redisUrl)!.message} (the worker is stopping: the answer is not recorded; the unit goes back to the queue)`, { cause: err });
          }
          if (!held) {
            held = true;
            this.enter();
          }
          await this.pause();
        }
      }
    } finally {
      if (held) this.leave(recorded);
    }
  }

  /** Ends every hold now (nothing recorded); later holds end at their first refusal. */
  stop(): void {
    this.stopping.abort();
  }

  private pause(): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.stopping.signal;
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, this.retryMs);
      signal.addEventListener('abort', done);
    });
  }

  private enter(): void {
    if (this.holding === 0) this.burst = { held: 0, recorded: 0 };
    this.holding++;
    this.burst.held++;
    if (this.burst.held === 1) {
      this.options.log.warn({ code: 'REDIS_FULL' }, 'Redis is full: answers that come back are held and recorded once it has room (not sent to the engine again)');
    }
  }

  private leave(recorded: boolean): void {
    this.holding--;
    if (recorded) this.burst.recorded++;
    if (this.holding > 0) return;
    const { held, recorded: done } = this.burst;
    if (done === held) this.options.log.info({ held, recorded: done }, 'Redis has room again: every held answer is recorded');
    else this.options.log.warn({ code: 'REDIS_FULL', held, recorded: done, dropped: held - done }, 'held answers not recorded (stopping, or another error): their units go back to the queue and run again');
  }
}
