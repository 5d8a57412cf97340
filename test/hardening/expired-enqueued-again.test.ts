/**
 * A written document whose record expired (RETENTION_DAYS), enqueued again while BullMQ's history
 * still holds its old unit jobs (it prunes them by age only as other jobs finish: on an idle
 * queue they stay): the new jobs share their ids and were ignored, so the document waited for
 * ever (a completed old job) or was settled with an old job's failure without being run. The
 * reconciler removes such jobs, made before the record was, and queues their units again.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

it('enqueued again after its record expired: every page runs again and is written, the one that failed then included', async () => {
  p = await startPipeline({ file: import.meta.filename, emulator: { speed: 50, reject: { matchText: 'Page 2 of 3' } } });
  const pdf = join(p.dir, 'expired.pdf');
  writeFileSync(pdf, numberedPdf(3));
  const [docId] = acceptedIds(await p.enqueue([pdf]));
  const [first] = await p.wait([docId!]);
  expect(first!.record).toMatchObject({ state: 'written', done: 2, failed: 1 });
  p.engine.setFaults({ reject: null });
  // Its record expires a few days later (the queue idle since: its jobs are still there), and gc
  // collects its index entry and name.
  await p.redis.del(p.store.docKey(docId!));
  await p.writer.collect();
  // Made "before" the record that comes next, as days-old jobs are.
  for (const unit of [0, 1, 2]) await p.redis.hset(`${p.config.prefix}:infer:${docId}.1.${unit}`, 'timestamp', Date.now() - 3 * 86_400_000);
  const requests = p.engine.stats().requests;
  const [again] = await p.enqueue([pdf]);
  expect(again!.runs![0]).toMatchObject({ outcome: 'enqueued', docId });
  const [done] = await p.wait([docId!], 30_000);
  expect(done!.record).toMatchObject({ state: 'written', done: 3, failed: 0 });
  const pages = parsePages(readFileSync(join(p.config.outDir, 'expired.md'), 'utf8'));
  for (const n of [1, 2, 3]) expect(pages.get(n)!.body, `page ${n}`).toContain(`Page ${n} of 3`);
  expect(p.engine.stats().requests - requests).toBe(3);
}, 90_000);
