/**
 * Lost locks are said in one warning per 2 s of losses: steady losses (a starved event loop,
 * Redis flapping) must not put the warning off for ever, as a timer restarted on every loss did.
 * The worker's own method, on an object holding only what it uses (its logger records warnings).
 */
import { expect, it } from 'vitest';
import { InferWorker } from '../../src/infer/worker.ts';

it('losses one every 600 ms are said within 2 s of the first, not only 2 s after the last', async () => {
  const warned: Array<{ atMs: number; units: number }> = [];
  const t0 = performance.now();
  const self = {
    lostLocks: new Set<string>(),
    lostLocksTimer: null as NodeJS.Timeout | null,
    log: { debug() {}, warn(o: { units: number }) { warned.push({ atMs: performance.now() - t0, units: o.units }); } },
  } as Record<string, unknown>;
  const proto = InferWorker.prototype as unknown as Record<string, (this: unknown, ...a: unknown[]) => void>;
  self.sayLostLocks = proto.sayLostLocks!.bind(self);
  for (let i = 0; i < 6; i++) {
    proto.noteLostLock!.call(self, `d.1.${i}`);
    await new Promise((r) => setTimeout(r, 600));
  }
  // 6 losses over 3.6 s: one warning at ~2 s for the first four, the rest pending.
  expect(warned.length).toBe(1);
  expect(warned[0]!.atMs).toBeLessThan(2600);
  expect(warned[0]!.units).toBe(4);
  (self.sayLostLocks as () => void)();
  expect(warned.map((w) => w.units)).toEqual([4, 2]);
});
