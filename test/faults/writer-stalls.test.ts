/**
 * Writers stopped or killed mid-write, twice in a row (found by a crash hunt): the write queue's
 * worker used BullMQ's defaults (a 30 s lock whatever LOCK_DURATION_MS said, one stall allowed),
 * so the second stall failed the job ("job stalled more than allowable limit") and the document
 * was marked failed with WRITE_FAILED although nothing was wrong with it. Now the writer keeps
 * the GPU workers' lock settings and stall allowance, and a write that stalls past it is queued
 * again, not failed. Each writer here hangs inside its write and is then stopped (its close gives
 * up after 10 s, holding the job's lock), as a SIGTERM'd or killed writer does.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { createWriter, type DocumentWriter } from '../../src/write/writer.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
const writers: DocumentWriter[] = [];
afterEach(async () => {
  await Promise.allSettled(writers.splice(0).map((w) => w.close()));
  await p?.stop();
  p = undefined;
});

it('a document whose writers stall twice mid-write is written by the next one, not marked failed', async () => {
  let entered = 0;
  const hang = async () => {
    entered++;
    await new Promise(() => undefined); // a writer stuck (or about to be killed) inside the write
  };
  p = await startPipeline({ file: import.meta.filename, config: { lockDurationMs: 2000, stalledIntervalMs: 1000 }, writer: { beforeArchive: hang } });
  const pdf = join(p.dir, 'stalled.pdf');
  writeFileSync(pdf, numberedPdf(2));
  const [docId] = acceptedIds(await p.enqueue([pdf]));
  const waitFor = async (n: number) => {
    for (let i = 0; i < 1200 && entered < n; i++) await new Promise((r) => setTimeout(r, 50));
    expect(entered).toBe(n);
  };
  await waitFor(1);
  // The first writer stops mid-write; a second takes the stalled job over and stalls the same way.
  const second = createWriter(p.config, silentLogger(), { beforeArchive: hang, reconcileIntervalMs: 1000 });
  writers.push(second);
  await second.start();
  await p.writer.close();
  await waitFor(2);
  const third = createWriter(p.config, silentLogger(), { reconcileIntervalMs: 1000 });
  writers.push(third);
  await third.start();
  await second.close();
  const [done] = await p.wait([docId!], 90_000);
  expect(done!.record).toMatchObject({ state: 'written', done: 2, failed: 0 });
}, 150_000);
