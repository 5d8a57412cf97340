/**
 * Waits for `promise` at most `ms`; resolves undefined after that (or if it rejects). For steps
 * of a shutdown that must not hold the process: what they wait on may never answer (a dead
 * Redis, a hung engine).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([promise.catch(() => undefined), new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref())]);
}
