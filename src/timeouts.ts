/**
 * Two ways to bound a wait. Both leave the promise running; neither holds the process open.
 */

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
