/**
 * A settle whose reply was lost, run again only after its document was written: the worker's
 * connection to Redis drops after the settle recorded the unit (its engine time counted in the
 * record and in the totals of all documents, BUDGET_USD's), and stays away while the writer's
 * reconciler finds the document complete and writes it. Reconnected, ioredis sends the settle
 * again (autoResendUnfulfilledCommands): it answers "duplicate" (the generation is written), and
 * its result can no longer be compared with the one stored (the results left Redis with the
 * write). That run is this very settle, already counted: the unit's engine time must count once
 * in the totals, as in the record and the report. Was: counted again as "another's result found"
 * (SPEND_LUA), so the totals read twice the unit's engine time and BUDGET_USD ran out early.
 *
 * Real Redis behind the TCP proxy of test/helpers/redis-proxy.ts, the emulator, a real worker and writer.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { openQueue } from '../../queues/connect.ts';
import { unitJobId } from '../../queues/contracts.ts';
import { SETTLE_LUA } from '../../src/store/scripts.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { startRedisProxy, type RedisProxy } from '../helpers/redis-proxy.ts';

let p: Pipeline;
let proxy: RedisProxy;

beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 20, outputTokensMin: 20, outputTokensMax: 40 }, config: { imageSize: 256, pageMaxTokens: 200 } });
  proxy = await startRedisProxy(p.config.redisUrl);
  await p.startWorker({ redisUrl: proxy.url });
});

afterAll(async () => {
  await proxy?.up().catch(() => {});
  await p?.stop();
  await proxy?.close();
});

const until = async (what: string, ok: () => Promise<boolean>, ms = 30_000) => {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (await ok()) return;
  throw new Error(`timed out waiting for ${what}`);
};

it('a settle run again after its document was written counts the unit\u2019s engine time once in the totals', async () => {
  const sha = createHash('sha1').update(SETTLE_LUA).digest('hex');
  const text = SETTLE_LUA.trim().split('\n')[1]!;
  proxy.dropReplyOf((chunk) => chunk.includes(sha) || chunk.includes(text), { down: true });
  const pdf = join(p.dir, 'resent.pdf');
  writeFileSync(pdf, numberedPdf(1, 20));
  const docId = acceptedIds(await p.enqueue([pdf]))[0]!;
  // Written by the reconciler (the settle's reply, which would have asked for the write, is lost)
  // while the worker cannot reach Redis.
  const [done] = await p.wait([docId], 60_000);
  expect(proxy.dropped).toBe(1);
  expect(done!.record).toMatchObject({ state: 'written', done: 1, failed: 0 });
  const engineMs = done!.record.engineMs;
  expect(engineMs).toBeGreaterThan(0);
  expect(await p.store.spentEngineMs()).toBe(engineMs);
  // The settle ids of a written document are kept an hour (~80 bytes a unit), not a day.
  const kept = await p.redis.pttl(p.store.spendsKey(docId, 1));
  expect(kept).toBeGreaterThan(0);
  expect(kept).toBeLessThanOrEqual(3_600_000);
  await proxy.up();
  const infer = openQueue('infer', p.config, p.redis);
  try {
    await until('the worker done with the unit', async () => ['completed', 'failed'].includes(await infer.getJobState(unitJobId(docId, 1, 0))));
  } finally {
    await infer.close();
  }
  // What the worker did after (a count of its spend) is awaited before the job completes.
  expect(await p.store.spentEngineMs()).toBe(engineMs);
  expect((await p.store.get(docId))!.engineMs).toBe(engineMs);
}, 90_000);
