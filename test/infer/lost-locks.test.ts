/**
 * Lost locks are said in one warning per 2 s of losses: steady losses (a starved event loop,
 * Redis flapping) must not put the warning off for ever, as a timer restarted on every loss did.
 * LostLocks as the worker uses it, with a logger that records its warnings.
 */
import { expect, it } from 'vitest';
import { LostLocks, lostLockJob } from '../../src/infer/lost-locks.ts';
import type { Logger } from '../../src/observe/log.ts';

it('losses one every 600 ms are said within 2 s of the first, not only 2 s after the last', async () => {
  const warned: Array<{ atMs: number; units: number }> = [];
  const t0 = performance.now();
  const log = { debug() {}, warn(o: { units: number }) { warned.push({ atMs: performance.now() - t0, units: o.units }); } } as unknown as Logger;
  const lost = new LostLocks(log);
  for (let i = 0; i < 6; i++) {
    lost.note(`d.1.${i}`);
    await new Promise((r) => setTimeout(r, 600));
  }
  // 6 losses over 3.6 s: one warning at ~2 s for the first four, the rest pending.
  expect(warned.length).toBe(1);
  expect(warned[0]!.atMs).toBeLessThan(2600);
  expect(warned[0]!.units).toBe(4);
  lost.say();
  expect(warned.map((w) => w.units)).toEqual([4, 2]);
});

it("reads the job id out of BullMQ's lost-lock errors, and nothing out of others", () => {
  expect(lostLockJob('could not renew lock for job doc.1.7')).toBe('doc.1.7');
  expect(lostLockJob('Missing lock for job doc.1.8. moveToFinished')).toBe('doc.1.8');
  expect(lostLockJob('Connection is closed.')).toBeUndefined();
});
