/**
 * Issue 14: `worker --attempts` (ATTEMPTS) is honoured. Jobs carry the attempts of whoever queued
 * them (the producer's, or a feeding worker's config); the worker that takes a unit decides with
 * its own. A page that never answers (the emulator hangs on it; the request times out:
 * ENGINE_TIMEOUT, retryable) fails for good after exactly the worker's attempts, fewer or more
 * than the job says.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { openQueue } from '../../queues/connect.ts';
import { unitJobId } from '../../queues/contracts.ts';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { enqueueFiles } from '../../src/ingest/batch.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

/** Producer and writer (who both feed units) with `producerAttempts`, the worker with `workerAttempts`. */
async function attemptsOfPage2(producerAttempts: number, workerAttempts: number, tag: string) {
  await p?.stop();
  p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { hang: { matchText: 'Page 2 of 3' } }, config: { attempts: producerAttempts } });
  const pdf = join(p!.dir, `${tag}.pdf`);
  writeFileSync(pdf, numberedPdf(3));
  const [docId] = acceptedIds(await enqueueFiles([pdf], { ...p!.config, attempts: producerAttempts }, silentLogger()));
  const worker = await p!.startWorker({ attempts: workerAttempts, requestTimeoutMs: 600, workerName: `w-${tag}` });
  const [done] = await p!.wait([docId!], 90_000);
  await worker.close({ deadlineMs: 1000 });
  const queue = openQueue('infer', p!.config, p!.redis);
  try {
    const job = await queue.getJob(unitJobId(docId!, 1, 1));
    return { record: done!.record, jobAttempts: job?.opts.attempts, attemptsMade: job?.attemptsMade, failedReason: job?.failedReason };
  } finally {
    await queue.close();
  }
}

it("a unit fails after the worker's attempts, not the producer's (fewer, then more)", async () => {
  const fewer = await attemptsOfPage2(5, 2, 'fewer');
  expect(fewer.record).toMatchObject({ state: 'written', done: 2, failed: 1 });
  expect(fewer.jobAttempts).toBe(5);
  expect(fewer.attemptsMade).toBe(2);
  expect(fewer.failedReason).toMatch(/^ENGINE_TIMEOUT: /);

  const more = await attemptsOfPage2(1, 3, 'more');
  expect(more.record).toMatchObject({ state: 'written', done: 2, failed: 1 });
  expect(more.jobAttempts).toBe(1);
  expect(more.attemptsMade).toBe(3);
}, 150_000);
