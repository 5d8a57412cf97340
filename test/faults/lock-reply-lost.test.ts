/**
 * Two workers on one unit, with a lost reply: worker A's settle runs (the unit recorded, its
 * cost counted), then A's connection to Redis drops before the reply comes back and stays away.
 * A's lock lapses; worker B's stalled check puts the unit back, B takes it, finds it answered
 * (not sent to the engine again) and hands the document to the writer, which writes it. Then A
 * comes back and ioredis sends A's settle again. Invariants: the unit has one result (A's), the
 * document is written once with it, the counters say one unit done, and the unit's engine time
 * counts once in the record and in the totals of all documents.
 *
 * Real Redis (A through the TCP proxy of test/helpers/redis-proxy.ts), the emulator, two real
 * workers and a writer in this process.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { openQueue } from '../../queues/connect.ts';
import { unitJobId } from '../../queues/contracts.ts';
import { SETTLE_LUA } from '../../src/store/scripts.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { startRedisProxy, type RedisProxy } from '../helpers/redis-proxy.ts';
import { until } from '../helpers/until.ts';

let p: Pipeline;
let proxy: RedisProxy;
const timing = { lockDurationMs: 2000, stalledIntervalMs: 1000 };

beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 20 }, config: { imageSize: 256, pageMaxTokens: 200, ...timing } });
  proxy = await startRedisProxy(p.config.redisUrl);
  await p.startWorker({ redisUrl: proxy.url, workerName: 'worker-a' });
});

afterAll(async () => {
  await proxy?.up().catch(() => {});
  await p?.stop();
  await proxy?.close();
});

it('a settle whose reply was lost while another worker took the unit over: one result, written once, counted once', async () => {
  const sha = createHash('sha1').update(SETTLE_LUA).digest('hex');
  const text = SETTLE_LUA.trim().split('\n')[1]!;
  proxy.dropReplyOf((chunk) => chunk.includes(sha) || chunk.includes(text), { down: true });
  const pdf = join(p.dir, 'taken-over.pdf');
  writeFileSync(pdf, numberedPdf(1, 20));
  const docId = acceptedIds(await p.enqueue([pdf]))[0]!;
  await until('worker A settled, its reply lost', async () => proxy.dropped === 1);
  const requests = p.engine.stats().requests;
  await p.startWorker({ workerName: 'worker-b' });
  const [done] = await p.wait([docId], 60_000);
  expect(done!.record).toMatchObject({ state: 'written', done: 1, failed: 0 });
  const writtenAt = done!.record.writtenAt;
  const engineMs = done!.record.engineMs;
  expect(engineMs).toBeGreaterThan(0);
  // B's start-up image probe only: B did not send the answered unit again.
  expect(p.engine.stats().requests - requests).toBe(1);
  const infer = openQueue('infer', p.config, p.redis);
  try {
    // B's run of the unit, then A back: its settle sent again.
    await until('the unit job done', async () => ['completed', 'failed'].includes(await infer.getJobState(unitJobId(docId, 1, 0))));
    await proxy.up();
    await new Promise((r) => setTimeout(r, 2 * timing.lockDurationMs));
  } finally {
    await infer.close();
  }
  const record = (await p.store.get(docId))!;
  expect(record).toMatchObject({ state: 'written', done: 1, failed: 0, engineMs, writtenAt });
  expect(await p.store.spentEngineMs()).toBe(engineMs);
  const pages = parsePages(readFileSync(join(p.config.outDir, 'taken-over.md'), 'utf8'));
  expect([...pages.keys()]).toEqual([1]);
  expect(pages.get(1)?.failed).toBeNull();
  const report = JSON.parse(readFileSync(join(p.config.outDir, 'taken-over.report.json'), 'utf8')) as Record<string, unknown>;
  expect(report).toMatchObject({ prompt_tokens: record.promptTokens, completion_tokens: record.completionTokens });
}, 90_000);
