/**
 * One caller's wait on a lookup that several callers share (the model's discovery, Ollama's
 * /api/ps): the lookup runs on without any one caller's signal, bounded by its own timeout, so
 * that one caller giving up does not fail the others; each waits under its own signal.
 */
import { EngineError } from './classify.ts';

/** `promise`, or ABORTED ("aborted while waiting for `what`") as soon as `signal` aborts. */
export function underSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (!signal) return promise;
  const aborted = () => new EngineError('ABORTED', `aborted while waiting for ${what}`, { cause: signal.reason });
  if (signal.aborted) return Promise.reject(aborted());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(aborted());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
