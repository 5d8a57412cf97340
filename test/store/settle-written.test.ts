/**
 * A written generation takes no result. Its results left Redis with the write (they are in the
 * archive); a settle without a lock that lands afterwards (an answer recorded where no result is,
 * after its job lost its lock; a unit settled as stalled) must not put a one-entry results hash
 * back, with no expiry, and count the unit twice on the record. Before, it did: the script
 * checked the generation and HSETNX only.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

it('a settle without a lock on a written document changes nothing: a duplicate', async () => {
  p = await startPipeline({ file: import.meta.filename });
  const pdf = join(p.dir, 'w.pdf');
  writeFileSync(pdf, numberedPdf(2));
  const [docId] = acceptedIds(await p.enqueue([pdf]));
  const [done] = await p.wait([docId!], 60_000);
  expect(done!.record).toMatchObject({ state: 'written', done: 2, failed: 0 });
  expect(await p.redis.exists(p.store.unitsKey(docId!, 1))).toBe(0);

  const late = { ok: true as const, text: 'late', promptTokens: 1, completionTokens: 1, engineMs: 1, latencyMs: 1, model: 'm', finishReason: 'stop', worker: 'w' };
  const outcome = await p.store.settle(docId!, 1, 0, late);
  expect(outcome).toMatchObject({ outcome: 'duplicate', last: false });
  expect(await p.redis.exists(p.store.unitsKey(docId!, 1))).toBe(0);
  expect(await p.store.get(docId!)).toMatchObject({ state: 'written', done: 2, failed: 0 });
}, 60_000);
