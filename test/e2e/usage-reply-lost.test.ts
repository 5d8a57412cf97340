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
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { SETTLE_LUA, SPEND_LUA } from '../../src/store/scripts.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { TEST_REDIS_URL } from '../helpers/redis.ts';

let p: Pipeline;
let proxy: Server;
const sockets = new Set<Socket>();
/** The script whose reply is dropped next (its sha and a line of its text), and how many replies were dropped. */
let target: { sha: string; text: string } | null = null;
let dropped = 0;
function dropReplyOf(lua: string): void {
  // EVAL with its text (ioredis's first call of a script on a connection), or EVALSHA.
  target = { sha: createHash('sha1').update(lua).digest('hex'), text: lua.trim().split('\n')[1]! };
  dropped = 0;
}

beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 20, outputTokensMin: 20, outputTokensMax: 40 }, config: { imageSize: 256, pageMaxTokens: 200 } });
  const upstream = new URL(TEST_REDIS_URL);
  proxy = createServer((client) => {
    const server = connect(Number(upstream.port || 6379), upstream.hostname);
    sockets.add(client).add(server);
    let armed = false;
    client.on('data', (chunk) => {
      if (target && dropped === 0 && (chunk.includes(target.sha) || chunk.includes(target.text))) armed = true;
      server.write(chunk);
    });
    server.on('data', (chunk) => {
      if (armed && target && dropped === 0) {
        // The script ran; its reply never reaches the worker.
        dropped++;
        target = null;
        client.destroy();
        server.destroy();
        return;
      }
      client.write(chunk);
    });
    const end = () => {
      client.destroy();
      server.destroy();
    };
    client.on('close', end).on('error', end);
    server.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const port = (proxy.address() as { port: number }).port;
  const db = upstream.pathname.length > 1 ? upstream.pathname : '';
  await p.startWorker({ redisUrl: `redis://127.0.0.1:${port}${db}` });
});

afterAll(async () => {
  await p?.stop();
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => proxy?.close(resolve));
});

it('a settle whose reply was lost (run again on reconnect: "duplicate") counts the unit once', async () => {
  dropReplyOf(SETTLE_LUA);
  const s0 = p.engine.stats();
  const pdf = join(p.dir, 'lost-reply.pdf');
  writeFileSync(pdf, numberedPdf(1, 20));
  const docId = acceptedIds(await p.enqueue([pdf]))[0]!;
  const [done] = await p.wait([docId], 60_000);
  expect(dropped).toBe(1);
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
  const s0 = p.engine.stats();
  const pdf = join(p.dir, 'lost-spend.pdf');
  writeFileSync(pdf, numberedPdf(1, 21));
  const docId = acceptedIds(await p.enqueue([pdf]))[0]!;
  const [done] = await p.wait([docId], 60_000);
  p.engine.setFaults({ cutoff: 0 });
  expect(dropped).toBe(1);
  expect(done!.record).toMatchObject({ state: 'written', done: 1, failed: 0 });
  const s = p.engine.stats();
  const spent = { prompt_tokens: s.promptTokens - s0.promptTokens, completion_tokens: s.generationTokens - s0.generationTokens };
  expect(s.requests - s0.requests).toBe(2);
  // The record (status --json, BUDGET_USD's totals) as the report.
  expect(done!.record).toMatchObject({ promptTokens: spent.prompt_tokens, completionTokens: spent.completion_tokens });
  const report = JSON.parse(readFileSync(join(p.config.outDir, 'lost-spend.report.json'), 'utf8')) as Record<string, unknown>;
  expect(report).toMatchObject(spent);
}, 90_000);
