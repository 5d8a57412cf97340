/**
 * Waiting with bounds: two ways to bound a wait on a promise (both leave it running; neither holds
 * the process open), and a sleep that an AbortSignal ends.
 */
import { DocbatchError } from './errors.ts';

/**
 * Waits for `promise` at most `ms`; resolves undefined after that (or if it rejects). For steps
 * of a shutdown that must not hold the process: what they wait on may never answer (a dead
 * Redis, a hung engine).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([promise.catch(() => undefined), new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref())]);
}

/** Like `promise`, but rejects ("no answer within ms") when it takes longer than `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Waits `ms`; rejects ABORTED (saying what was waited for) as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal, what = 'waiting'): Promise<void> {
  return new Promise((resolve, reject) => {
    const aborted = () => new DocbatchError('ABORTED', `aborted while ${what}`, { cause: signal.reason });
    if (signal.aborted) return reject(aborted());
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(aborted());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
