/**
 * Redis fills up (maxmemory, noeviction) while units are at the engine. Before: every answer
 * that came back while Redis was full could not be recorded; its unit was logged as INTERNAL
 * ("unit failed; will retry"), used one of its attempts, and was sent to the engine again once
 * Redis had room (a review saw 38 such lines). Now the worker holds the answer and records it
 * once Redis takes writes again: under the job's lock while it still holds it, else only if no
 * result is there (first write wins, so outputs stay exactly once). Each page goes to the engine
 * once. A private redis-server is made full; the Redis other tests share is not touched.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { startPrivateRedis, type PrivateRedis } from '../../src/demo/private-redis.ts';
import type { Config } from '../../src/config.ts';
import { createLogger } from '../../src/observe/log.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let redis: PrivateRedis | undefined;
let admin: Redis | undefined;
let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  admin?.disconnect();
  await redis?.stop();
  p = undefined;
  admin = undefined;
  redis = undefined;
});

interface Line {
  msg: string;
  level: number;
  worker?: string;
  code?: string;
  held?: number;
  dropped?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A pipeline on a private Redis that can be filled, a worker on it, and a 12-page PDF enqueued. */
async function start(config: Partial<Config> = {}) {
  redis = await startPrivateRedis();
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  await admin.config('SET', 'maxmemory-policy', 'noeviction');
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  p = await startPipeline({
    file: import.meta.filename,
    worker: false,
    emulator: { speed: 1, outputTokensMin: 150, outputTokensMax: 300 },
    config: { redisUrl: redis.url, ...config },
    log: createLogger({ level: 'info', destination: sink }),
  });
  const worker = await p.startWorker({ workerName: 'full-answers' });
  // The worker's start-up probe of the engine is a request too.
  const before = p.engine.stats();
  const pdf = join(p.dir, 'full.pdf');
  writeFileSync(pdf, numberedPdf(12));
  const ids = acceptedIds(await p.enqueue([pdf]));
  return { worker, before, ids, lines };
}

/**
 * Fills Redis once answers come in with at least 4 requests at the engine, and keeps it full for
 * at least `fullMs` and until `answers` answers came back meanwhile. Returns how many did.
 */
async function fillWhileAnswering(before: { completed: number }, fullMs: number, answers: number): Promise<number> {
  for (let i = 0; i < 800 && (p!.engine.stats().running < 4 || p!.engine.stats().completed === before.completed); i++) await sleep(25);
  expect(p!.engine.stats().running).toBeGreaterThanOrEqual(4);
  await admin!.config('SET', 'maxmemory', '1');
  const answeredBefore = p!.engine.stats().completed;
  const filledAt = Date.now();
  for (let i = 0; i < 400 && (p!.engine.stats().completed - answeredBefore < answers || Date.now() - filledAt < fullMs); i++) await sleep(50);
  return p!.engine.stats().completed - answeredBefore;
}

/** Frees Redis, waits for the document, and says what it took. */
async function freeAndFinish(run: Awaited<ReturnType<typeof start>>) {
  await admin!.config('SET', 'maxmemory', '0');
  const [done] = await p!.wait(run.ids, 90_000);
  const pages = parsePages(readFileSync(join(p!.config.outDir, 'full.md'), 'utf8'));
  const after = p!.engine.stats();
  const spent = { requests: after.requests - run.before.requests, completed: after.completed - run.before.completed, aborted: after.aborted - run.before.aborted };
  const tokens = { prompt_tokens: after.promptTokens - run.before.promptTokens, completion_tokens: after.generationTokens - run.before.generationTokens };
  const report = JSON.parse(readFileSync(join(p!.config.outDir, 'full.report.json'), 'utf8')) as { prompt_tokens: number; completion_tokens: number };
  return { lines: run.lines.filter((l) => l.worker === 'full-answers'), done: done!, pages, spent, tokens, reported: { prompt_tokens: report.prompt_tokens, completion_tokens: report.completion_tokens } };
}

async function runThroughFullRedis(fullMs: number, answers: number, config: Partial<Config> = {}) {
  const run = await start(config);
  const answeredWhileFull = await fillWhileAnswering(run.before, fullMs, answers);
  return { ...(await freeAndFinish(run)), answeredWhileFull };
}

it('answers that come back while Redis is full are held and recorded once it has room: no attempt used, nothing sent twice', async () => {
  const r = await runThroughFullRedis(0, 3);
  // The test means something only if answers came back while Redis refused writes.
  expect(r.answeredWhileFull).toBeGreaterThanOrEqual(3);
  expect(r.lines.filter((l) => l.code === 'INTERNAL' || /will retry/.test(l.msg))).toEqual([]);
  expect(r.lines.filter((l) => /held/.test(l.msg)).length).toBeGreaterThanOrEqual(1);
  expect(r.done.record).toMatchObject({ state: 'written', done: 12, failed: 0 });
  expect([...r.pages.keys()]).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  expect([...r.pages.values()].filter((v) => v.failed)).toEqual([]);
  // Every page went to the engine once, and its tokens count once: a held answer recorded on a
  // later try is not counted again.
  expect(r.spent).toEqual({ requests: 12, completed: 12, aborted: 0 });
  expect(r.reported).toEqual(r.tokens);
}, 120_000);

it('an answer held past its job lock (Redis full longer than LOCK_DURATION_MS) is recorded once, and the unit is not sent again', async () => {
  // Locks of 3 s, renewed every 1.5 s until Redis fills: they run out 1.5 to 3 s into the 6 s.
  // Answers that came back before then are held past their locks; requests still at the engine
  // when the locks are found lost are aborted (and sent again later).
  const r = await runThroughFullRedis(6000, 1, { lockDurationMs: 3000, stalledIntervalMs: 1000 });
  expect(r.answeredWhileFull).toBeGreaterThanOrEqual(1);
  expect(r.lines.filter((l) => l.code === 'ABORTED' && /lost the lock/.test(l.msg)).length).toBeGreaterThanOrEqual(1);
  expect(r.lines.filter((l) => l.code === 'INTERNAL' || /will retry/.test(l.msg))).toEqual([]);
  expect(r.done.record).toMatchObject({ state: 'written', done: 12, failed: 0 });
  expect([...r.pages.values()].filter((v) => v.failed)).toEqual([]);
  expect([...r.pages.keys()]).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  // Answers that came back are never asked again: only requests cut off when their lock was
  // lost may be sent a second time. Cut off means aborted at the engine, or (a race the client
  // cannot close) answered by the engine while the worker, its lock just lost, was aborting it:
  // that answer never reached the worker and counts as completed at the engine. One such unit
  // at most was seen (a CI run under load: 13); held answers re-sent would add one each.
  expect(r.spent.completed).toBeGreaterThanOrEqual(12);
  expect(r.spent.completed).toBeLessThanOrEqual(13);
  expect(r.spent.requests).toBe(r.spent.completed + r.spent.aborted);
  expect(r.lines.filter((l) => /every held answer is recorded/.test(l.msg))).toHaveLength(1);
}, 120_000);

it('a worker stopped while it holds answers ends within its drain deadline; those units run again elsewhere, each written once', async () => {
  const run = await start({ lockDurationMs: 3000, stalledIntervalMs: 1000 });
  expect(await fillWhileAnswering(run.before, 0, 2)).toBeGreaterThanOrEqual(2);
  const t0 = performance.now();
  await run.worker.close({ deadlineMs: 2000 });
  const closeMs = performance.now() - t0;
  // The deadline, then at most the bounded waits of a forced stop (Redis refuses the hand-back).
  expect(closeMs).toBeLessThan(2000 + 3000);
  const dropped = run.lines.filter((l) => /held answers not recorded/.test(l.msg));
  expect(dropped).toHaveLength(1);
  expect(dropped[0]!.dropped).toBeGreaterThanOrEqual(2);
  // Another worker takes the units once Redis has room (their locks expire first).
  await p!.startWorker({ workerName: 'after-stop' });
  const r = await freeAndFinish(run);
  expect(r.done.record).toMatchObject({ state: 'written', done: 12, failed: 0 });
  expect([...r.pages.keys()]).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  expect([...r.pages.values()].filter((v) => v.failed)).toEqual([]);
}, 120_000);
