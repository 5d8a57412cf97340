/**
 * Fault case 3 of ../shared/reference/reliability.md: a unit whose lock is lost (another worker
 * may already have it) must stop, not race: its request to the engine is aborted and nothing is
 * recorded (an answer that had already come back is recorded only where no result is: first
 * write wins). The unit is then done once, by whoever holds it next.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { jobLockKey, openQueue } from '../../queues/connect.ts';
import { unitJobId } from '../../queues/contracts.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

it('a lost lock aborts the request in flight and writes nothing; the unit is done once afterwards', async () => {
  p = await startPipeline({
    file: import.meta.filename,
    emulator: { hang: { matchText: 'Page 3 of 5' } },
    config: { lockDurationMs: 2000, stalledIntervalMs: 1000 },
  });
  const pdf = join(p.dir, 'locks.pdf');
  writeFileSync(pdf, numberedPdf(5));
  const [docId] = acceptedIds(await p.enqueue([pdf]));
  const jobId = unitJobId(docId!, 1, 2);
  const lockKey = jobLockKey(p.config.prefix, 'infer', jobId);
  for (let i = 0; i < 200 && p.engine.stats().hung < 1; i++) await new Promise((r) => setTimeout(r, 25));
  expect(p.engine.stats().hung).toBe(1);
  expect(await p.redis.exists(lockKey)).toBe(1);

  // Someone else's lock now (as if this worker had stalled and the job had moved on).
  await p.redis.set(lockKey, 'another-worker-token', 'PX', 2000);
  for (let i = 0; i < 200 && p.engine.stats().aborted < 1; i++) await new Promise((r) => setTimeout(r, 25));
  expect(p.engine.stats().aborted).toBe(1);
  expect(await p.store.unitResult(docId!, 1, 2)).toBeNull();

  // The engine is fine again; the unit comes back through the stalled check and is done once.
  p.engine.setFaults({ hang: null });
  await p.wait([docId!], 60_000);
  const pages = parsePages(readFileSync(join(p.config.outDir, 'locks.md'), 'utf8'));
  expect(pages.get(3)?.failed).toBeNull();
  expect(pages.get(3)?.body).toContain('Page 3 of 5');
  const infer = openQueue('infer', p.config, p.redis);
  expect(await infer.getJobState(jobId)).toBe('completed');
  await infer.close();
}, 90_000);

it("BullMQ's own error for a lost lock (a numeric code) reaches the worker's listeners instead of crashing the process", async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false });
  const { connectRedis, openWorker } = await import('../../queues/connect.ts');
  const connection = connectRedis(p.config.redisUrl, 'worker');
  const worker = openWorker('infer', async () => ({ settled: 'done' }) as never, p.config, connection, { autorun: false });
  try {
    const heard: unknown[] = [];
    worker.on('error', (err) => heard.push(err));
    // What BullMQ emits when moveToFinished finds another worker's lock (finished-errors.js).
    const lost = Object.assign(new Error('Missing lock for job 7. moveToFinished'), { code: -2 });
    expect(() => worker.emit('error', lost)).not.toThrow();
    expect(heard).toEqual([lost]);
  } finally {
    await worker.close();
    connection.disconnect();
  }
});

it('a unit whose failure was recorded, its job back as stalled (its worker died first), is not reopened or sent again', async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false });
  const pdf = join(p.dir, 'died.pdf');
  writeFileSync(pdf, numberedPdf(2, 4));
  const [docId] = acceptedIds(await p.enqueue([pdf]));
  // What a worker killed between settling a failure and telling BullMQ leaves: the failure in
  // Redis, the job waiting again with its stall counted.
  await p.store.settle(docId!, 1, 1, { ok: false, code: 'BAD_REQUEST', message: 'engine rejected the request (400)' });
  const { jobKey } = await import('../../queues/connect.ts');
  await p.redis.hset(jobKey(p.config.prefix, 'infer', unitJobId(docId!, 1, 1)), 'stc', 1);
  await p.startWorker();
  const [done] = await p.wait([docId!], 60_000);
  expect(done!.record).toMatchObject({ state: 'written', done: 1, failed: 1, reopens: 0 });
  // The worker's start-up image probe, then page 1: page 2 was not sent.
  expect(p.engine.stats().requests).toBe(2);
}, 90_000);
