/**
 * The gate in front of the engine: at most `limit()` requests pass at once, none while `paused()`.
 * Waiters are served first come, first served; the limit may change at any time (call
 * `notify()` after it does). A `solo` request (a unit suspected of crashing the engine) passes
 * only when nothing else is in flight, and nothing passes beside it: if the engine dies again,
 * the suspect is the cause. Solo waiters go before ordinary ones, which stop passing while one
 * waits (the engine drains for it).
 *
 * It also attributes engine time: while n requests are in flight, each one is charged 1/n of the
 * elapsed time. The shares of all requests add up to the time the gate had any request in flight,
 * so the engine-seconds of a document sum to the wall time the engine spent on it (as this
 * worker saw it): a request that brought no answer is charged too (dispatch.ts hands its share
 * on with the unit's next answer, or with the attempt that failed).
 */
import { DocbatchError } from '../errors.ts';

export interface Ticket {
  /** Engine milliseconds charged to this request so far. */
  charged(): number;
  release(): void;
}

interface Waiter {
  solo: boolean;
  resolve: (ticket: Ticket) => void;
  reject: (err: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

export class Gate {
  private readonly limit: () => number;
  private readonly paused: () => boolean;
  private readonly onChange: (inFlight: number) => void;
  private readonly waiters: Waiter[] = [];
  private active = 0;
  private soloActive = false;
  /** ∫ 1/active dt in ms, advanced whenever `active` changes. */
  private share = 0;
  private lastChange = performance.now();
  private busyMs = 0;

  constructor(limit: () => number, paused: () => boolean = () => false, onChange: (inFlight: number) => void = () => {}) {
    this.limit = limit;
    this.paused = paused;
    this.onChange = onChange;
  }

  get inFlight(): number {
    return this.active;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Milliseconds during which at least one request was in flight. */
  get busyTime(): number {
    this.advance();
    return this.busyMs;
  }

  acquire(signal?: AbortSignal, options: { solo?: boolean } = {}): Promise<Ticket> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const solo = options.solo === true;
    if (this.waiters.length === 0 && this.canPass(solo)) return Promise.resolve(this.enter(solo));
    return new Promise<Ticket>((resolve, reject) => {
      const waiter: Waiter = {
        solo,
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(abortError(signal));
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      if (solo) {
        // Before the first ordinary waiter: suspects are few, and the engine drains for them.
        const at = this.waiters.findIndex((w) => !w.solo);
        this.waiters.splice(at < 0 ? this.waiters.length : at, 0, waiter);
      } else {
        this.waiters.push(waiter);
      }
    });
  }

  /** Requests waiting to go alone. */
  get soloWaiting(): number {
    return this.waiters.filter((w) => w.solo).length;
  }

  /** Lets waiters through after the limit rose or a pause ended. */
  notify(): void {
    while (this.waiters.length > 0 && this.canPass(this.waiters[0]!.solo)) {
      const waiter = this.waiters.shift()!;
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.resolve(this.enter(waiter.solo));
    }
  }

  private canPass(solo: boolean): boolean {
    if (this.paused() || this.soloActive) return false;
    if (solo) return this.active === 0;
    if (this.waiters.some((w) => w.solo)) return false;
    return this.active < Math.max(1, this.limit());
  }

  private enter(solo = false): Ticket {
    this.advance();
    if (solo) this.soloActive = true;
    this.active++;
    this.onChange(this.active);
    const start = this.share;
    let released = false;
    let final = 0;
    return {
      charged: () => {
        if (released) return final;
        this.advance();
        return this.share - start;
      },
      release: () => {
        if (released) return;
        this.advance();
        final = this.share - start;
        released = true;
        if (solo) this.soloActive = false;
        this.active--;
        this.onChange(this.active);
        this.notify();
      },
    };
  }

  private advance(): void {
    const now = performance.now();
    const dt = now - this.lastChange;
    if (this.active > 0) {
      this.share += dt / this.active;
      this.busyMs += dt;
    }
    this.lastChange = now;
  }
}

function abortError(signal: AbortSignal | undefined): DocbatchError {
  return new DocbatchError('ABORTED', `aborted while waiting for the engine: ${String(signal?.reason ?? 'aborted')}`, { cause: signal?.reason });
}
