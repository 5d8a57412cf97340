/**
 * A held answer's settle run again after its first run went through. Redis fills up right after
 * a unit's settle recorded it (its tokens and engine time counted in the record and in the totals
 * of all documents, BUDGET_USD's): the write job the settle made due is refused, and the worker
 * holds the answer (hold.ts), trying the whole settle again every second. Meanwhile Redis gets room
 * and the writer's reconciler writes the document, while the worker cannot reach Redis. Its next
 * try then finds the generation written, its result gone with the write: it cannot tell its own
 * result from another's. Was: each try was a new settle (a new id), so it read as "another's
 * result found" and the answer's engine time was counted again in the totals (SPEND_LUA): twice
 * the unit's engine time against BUDGET_USD. Now every try of one answer is the same settle (one
 * id), which SETTLE_LUA knows as recorded by its first run.
 *
 * A private redis-server (filled; the Redis other tests share is not touched), the TCP proxy of
 * test/helpers/redis-proxy.ts in front of the worker, the emulator, a real worker and writer.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { openQueue } from '../../queues/connect.ts';
import { unitJobId } from '../../queues/contracts.ts';
import { startPrivateRedis, type PrivateRedis } from '../../src/demo/private-redis.ts';
import { createLogger } from '../../src/observe/log.ts';
import { SETTLE_LUA } from '../../src/store/scripts.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { startRedisProxy, type RedisProxy } from '../helpers/redis-proxy.ts';
import { until } from '../helpers/until.ts';

let server: PrivateRedis;
let admin: Redis;
let p: Pipeline;
let proxy: RedisProxy;
const lines: Array<{ msg: string; code?: string }> = [];

beforeAll(async () => {
  server = await startPrivateRedis();
  admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
  await admin.config('SET', 'maxmemory-policy', 'noeviction');
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as { msg: string });
      done();
    },
  });
  p = await startPipeline({
    file: import.meta.filename,
    worker: false,
    emulator: { speed: 20, outputTokensMin: 20, outputTokensMax: 40 },
    config: { redisUrl: server.url, imageSize: 256, pageMaxTokens: 200 },
    log: createLogger({ level: 'info', destination: sink }),
  });
  proxy = await startRedisProxy(server.url);
  await p.startWorker({ redisUrl: proxy.url });
});

afterAll(async () => {
  await admin?.config('SET', 'maxmemory', '0').catch(() => {});
  await proxy?.up().catch(() => {});
  await p?.stop();
  await proxy?.close();
  admin?.disconnect();
  await server?.stop();
});

it('an answer held after its settle went through counts its engine time once in the totals', async () => {
  const sha = createHash('sha1').update(SETTLE_LUA).digest('hex');
  const text = SETTLE_LUA.trim().split('\n')[1]!;
  // The settle runs; before its reply reaches the worker, Redis is full.
  proxy.holdReplyOf((chunk) => chunk.includes(sha) || chunk.includes(text), async () => {
    await admin.config('SET', 'maxmemory', '1');
  });
  const pdf = join(p.dir, 'held.pdf');
  writeFileSync(pdf, numberedPdf(1, 20));
  const docId = acceptedIds(await p.enqueue([pdf]))[0]!;
  // The write job it made due is refused: the answer is held.
  await until('the answer held', async () => lines.some((l) => /answers that come back are held/.test(l.msg)));
  const recorded = (await p.store.get(docId))!;
  expect(recorded).toMatchObject({ done: 1 });
  const engineMs = recorded.engineMs;
  expect(engineMs).toBeGreaterThan(0);
  expect(await p.store.spentEngineMs()).toBe(engineMs);
  // Redis gets room while the worker cannot reach it: the reconciler writes the document.
  await proxy.down();
  await admin.config('SET', 'maxmemory', '0');
  const [done] = await p.wait([docId], 60_000);
  expect(done!.record).toMatchObject({ state: 'written', done: 1, failed: 0, engineMs });
  // The worker back: its held settle runs again.
  await proxy.up();
  const infer = openQueue('infer', p.config, p.redis);
  try {
    await until('the worker done with the unit', async () => ['completed', 'failed'].includes(await infer.getJobState(unitJobId(docId, 1, 0))));
    expect(await infer.getJobState(unitJobId(docId, 1, 0))).toBe('completed');
  } finally {
    await infer.close();
  }
  expect(lines.filter((l) => /every held answer is recorded/.test(l.msg))).toHaveLength(1);
  expect(await p.store.spentEngineMs()).toBe(engineMs);
  expect((await p.store.get(docId))!.engineMs).toBe(engineMs);
}, 90_000);
