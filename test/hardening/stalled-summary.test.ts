/**
 * Issue 8, item 5: a chunk that BullMQ failed by itself (stalled too often) is settled by the one
 * settle function, with its conversation group, so its conversation's summary is still made from
 * the other chunks instead of ending as UNIT_LOST.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UnrecoverableError, Worker } from 'bullmq';
import { afterEach, expect, it } from 'vitest';
import { connectRedis } from '../../queues/connect.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

it('a stalled chunk counts towards its conversation summary; the summary is made from the others', async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, config: { chunkTokens: 64 } });
  // One conversation long enough for several 64-token chunks.
  const messages = Array.from({ length: 8 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `Message ${i}: ${'lorem ipsum dolor sit amet '.repeat(12)}` }));
  const path = join(p.dir, 'long.jsonl');
  writeFileSync(path, `${JSON.stringify({ id: 'conv-1', title: 'Long one', messages })}\n`);
  const ids = acceptedIds(await p.enqueue([path], { conversationSummary: true }));
  const record = (await p.store.get(ids[0]!))!;
  expect(record.meta.feedUnits).toBeGreaterThanOrEqual(3);
  expect(record.units).toBe(record.meta.feedUnits + 1);

  // Unit 1's job fails the way BullMQ fails a job its workers kept dying on.
  const redis = connectRedis(p.config.redisUrl, 'worker');
  const grabber = new Worker('infer', null, { connection: redis, prefix: p.config.prefix, autorun: false });
  const token = 'test-grabber';
  const held = [];
  for (let job = await grabber.getNextJob(token, { block: false }); job; job = await grabber.getNextJob(token, { block: false })) held.push(job);
  expect(held.map((j) => j.data.unit).sort((a, b) => a - b)).toEqual(Array.from({ length: record.meta.feedUnits }, (_, i) => i));
  for (const job of held) {
    if (job.data.unit === 1) await job.moveToFailed(new UnrecoverableError('job stalled more than allowable limit'), token);
    else await job.moveToWait(token);
  }
  await grabber.close();
  redis.disconnect();

  await p.startWorker();
  await p.writer.reconcile();
  const [done] = await p.wait(ids, 60_000);
  expect(done!.record).toMatchObject({ state: 'written', failed: 1 });
  const lines = readFileSync(join(p.config.outDir, 'long.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  expect(lines.find((l) => l.chunk === 1)).toMatchObject({ error: { code: 'UNIT_STALLED' } });
  const summary = lines.find((l) => l.chunk === 'summary');
  expect(summary.error).toBeUndefined();
  expect(summary.summary).toEqual(expect.any(String));
  expect(summary.from_chunks).toBe(record.meta.feedUnits - 1);
}, 90_000);
