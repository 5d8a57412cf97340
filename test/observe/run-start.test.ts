/**
 * A document's run starts when a worker takes its first unit, not when the first unit settles:
 * while its first pages are at the engine it is `running` (not `queued`), and its rate is measured
 * over the time they took. Real worker, real engine emulator (slow answers), real Redis.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { progressOf } from '../../src/observe/progress.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

it('a document whose first units are at the engine is running, and its rate counts their time', async () => {
  // Every answer takes about a second: 4 pages go to the engine together and settle together.
  p = await startPipeline({ file: import.meta.filename, emulator: { speed: 1, outputTokensMin: 150, outputTokensMax: 150 } });
  const pdf = join(p.dir, 'slow.pdf');
  writeFileSync(pdf, numberedPdf(4));
  const [docId] = acceptedIds(await p.enqueue([pdf]));
  const started = Date.now();
  let seen: ReturnType<typeof progressOf> | null = null;
  while (Date.now() - started < 30_000) {
    const record = await p.store.get(docId!);
    if (record && record.startedAt !== null) {
      seen = progressOf(record);
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(seen, 'started_at was never set').not.toBeNull();
  // Marked started before any unit settled: the engine takes about a second to answer.
  expect(seen!.record.done + seen!.record.failed).toBe(0);
  expect(seen!.state).toBe('running');

  await p.wait([docId!], 60_000);
  const record = (await p.store.get(docId!))!;
  const engineSeconds = record.engineMs / 1000 / 4; // the pages ran side by side
  const span = (Date.parse(record.finishedAt!) - Date.parse(record.startedAt!)) / 1000;
  // The run covers the engine's time on the pages (timed from the first unit settled it was
  // the few milliseconds between four answers, a rate of hundreds of pages a second).
  expect(engineSeconds).toBeGreaterThan(0.5);
  expect(span).toBeGreaterThanOrEqual(engineSeconds * 0.9);
  expect(progressOf(record).rate!).toBeLessThan(4 / (engineSeconds * 0.9));
}, 90_000);
