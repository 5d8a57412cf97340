/**
 * Counts whose reply is lost: the worker's connection to Redis drops after a counting script ran
 * and before the reply came back. ioredis sends unanswered commands again once it has
 * reconnected (autoResendUnfulfilledCommands), so the script runs a second time. The settle then
 * answers "duplicate" (the result there is this worker's own, recorded and counted by the first
 * run); the count of a rejected answer (SPEND_LUA) must add nothing the second time. The record
 * and the report must count the tokens once, equal to the emulator's own counters.
 *
 * The worker reaches Redis through a TCP proxy that forwards everything, and once, when a
 * command carrying the script has gone up, closes the worker's side before the reply comes down.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { SETTLE_LUA, SPEND_LUA } from '../../src/store/scripts.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { startRedisProxy, type RedisProxy } from '../helpers/redis-proxy.ts';

let p: Pipeline;
let proxy: RedisProxy;

/** Drops the reply of the next run of `lua`: sent as EVAL with its text (ioredis's first call of a script on a connection), or EVALSHA. */
function dropReplyOf(lua: string): void {
  const sha = createHash('sha1').update(lua).digest('hex');
  const text = lua.trim().split('\n')[1]!;
  proxy.dropReplyOf((chunk) => chunk.includes(sha) || chunk.includes(text));
}

beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 20, outputTokensMin: 20, outputTokensMax: 40 }, config: { imageSize: 256, pageMaxTokens: 200 } });
  proxy = await startRedisProxy(p.config.redisUrl);
  await p.startWorker({ redisUrl: proxy.url });
});

afterAll(async () => {
  await p?.stop();
  await proxy?.close();
});

it('a settle whose reply was lost (run again on reconnect: "duplicate") counts the unit once', async () => {
  dropReplyOf(SETTLE_LUA);
  const dropped = proxy.dropped;
  const s0 = p.engine.stats();
  const pdf = join(p.dir, 'lost-reply.pdf');
  writeFileSync(pdf, numberedPdf(1, 20));
  const docId = acceptedIds(await p.enqueue([pdf]))[0]!;
  const [done] = await p.wait([docId], 60_000);
  expect(proxy.dropped - dropped).toBe(1);
  expect(done!.record).toMatchObject({ state: 'written', done: 1, failed: 0 });
  const s = p.engine.stats();
  const spent = { prompt_tokens: s.promptTokens - s0.promptTokens, completion_tokens: s.generationTokens - s0.generationTokens };
  expect(spent.prompt_tokens).toBeGreaterThan(0);
  expect(done!.record).toMatchObject({ promptTokens: spent.prompt_tokens, completionTokens: spent.completion_tokens });
  const report = JSON.parse(readFileSync(join(p.config.outDir, 'lost-reply.report.json'), 'utf8')) as Record<string, unknown>;
  expect(report).toMatchObject(spent);
}, 90_000);

it('a count of a rejected answer whose reply was lost (run again on reconnect) counts it once', async () => {
  // Every first answer cut off at max_tokens: rejected, counted at once (SPEND), asked again.
  p.engine.setFaults({ cutoff: 1 });
  dropReplyOf(SPEND_LUA);
  const dropped = proxy.dropped;
  const s0 = p.engine.stats();
  const pdf = join(p.dir, 'lost-spend.pdf');
  writeFileSync(pdf, numberedPdf(1, 21));
  const docId = acceptedIds(await p.enqueue([pdf]))[0]!;
  const [done] = await p.wait([docId], 60_000);
  p.engine.setFaults({ cutoff: 0 });
  expect(proxy.dropped - dropped).toBe(1);
  expect(done!.record).toMatchObject({ state: 'written', done: 1, failed: 0 });
  const s = p.engine.stats();
  const spent = { prompt_tokens: s.promptTokens - s0.promptTokens, completion_tokens: s.generationTokens - s0.generationTokens };
  expect(s.requests - s0.requests).toBe(2);
  // The record (status --json, BUDGET_USD's totals) as the report.
  expect(done!.record).toMatchObject({ promptTokens: spent.prompt_tokens, completionTokens: spent.completion_tokens });
  const report = JSON.parse(readFileSync(join(p.config.outDir, 'lost-spend.report.json'), 'utf8')) as Record<string, unknown>;
  expect(report).toMatchObject(spent);
}, 90_000);
