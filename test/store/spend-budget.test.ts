/**
 * Engine time spent on a unit whose answers can no longer be counted on its record (the document
 * written since, enqueued again anew, or gone) was paid for all the same: it counts in the totals
 * of all documents, which BUDGET_USD is checked against, without changing the record.
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

it('what a late attempt spent on a written document, an old generation or a document gone counts towards the budget, not on the record', async () => {
  p = await startPipeline({ file: import.meta.filename });
  const pdf = join(p.dir, 'late.pdf');
  writeFileSync(pdf, numberedPdf(2));
  const [docId] = acceptedIds(await p.enqueue([pdf]));
  const [done] = await p.wait([docId!], 60_000);
  expect(done!.record.state).toBe('written');
  const before = await p.store.get(docId!);
  const budget0 = await p.store.spentEngineMs();
  const late = { promptTokens: 100, completionTokens: 10, engineMs: 700 };
  // Written: the record (and its report) stay as they are.
  expect(await p.store.addSpent(docId!, 1, 0, late)).toBe(false);
  // Another generation, and a document that is not there.
  expect(await p.store.addSpent(docId!, 7, 0, late)).toBe(false);
  expect(await p.store.addSpent('no-such-document', 1, 0, late)).toBe(false);
  expect(await p.store.get(docId!)).toMatchObject({ promptTokens: before!.promptTokens, completionTokens: before!.completionTokens, engineMs: before!.engineMs });
  expect((await p.store.spentEngineMs()) - budget0).toBe(3 * 700);
}, 60_000);
