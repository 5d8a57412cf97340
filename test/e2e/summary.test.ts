/**
 * The optional second stage for chat exports: each conversation's chunk summaries are reduced to
 * one conversation summary (a unit added when the conversation's last chunk settles), written
 * after its chunks as a line with "chunk": "summary".
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { openQueue } from '../../queues/connect.ts';
import { SHARED_INFER_QUEUE } from '../../queues/routes.ts';
import { runCli } from '../helpers/cli.ts';
import { acceptedIds, parseEcho, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

it('conversation summaries from chunk summaries, one line per conversation after its chunks', async () => {
  p = await startPipeline({ file: import.meta.filename, config: { chunkTokens: 300 } });
  const conv = (id: string, turns: number) =>
    JSON.stringify({
      id,
      title: `Talk ${id}`,
      messages: Array.from({ length: turns }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `${id} message ${i}: ${'lorem ipsum dolor sit amet '.repeat(12)}` })),
    });
  const file = join(p.dir, 'talks.jsonl');
  writeFileSync(file, [conv('long', 12), conv('short', 1), conv('mid', 5)].join('\n'));
  const outcomes = await p.enqueue([file], { conversationSummary: true });
  const [docId] = acceptedIds(outcomes);
  await p.wait([docId!]);
  const lines = readFileSync(join(p.config.outDir, 'talks.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

  // Each conversation: its chunks in order, then its summary line.
  const order = lines.map((l) => `${l.conversation_id}:${l.chunk}`);
  const long = lines.filter((l) => l.conversation_id === 'long' && l.chunk !== 'summary').length;
  const mid = lines.filter((l) => l.conversation_id === 'mid' && l.chunk !== 'summary').length;
  expect(long).toBeGreaterThan(2);
  expect(mid).toBeGreaterThan(1);
  expect(order).toEqual([
    ...Array.from({ length: long }, (_, i) => `long:${i}`),
    'long:summary',
    'short:0',
    'short:summary',
    ...Array.from({ length: mid }, (_, i) => `mid:${i}`),
    'mid:summary',
  ]);
  const summary = lines.find((l) => l.conversation_id === 'long' && l.chunk === 'summary');
  // The reduce request got the chunk summaries, in order, as its payload.
  expect(parseEcho(summary.summary).text?.first).toMatch(/^Part 1 of \d+:/);
  expect(summary).toMatchObject({ chunks: long, from_chunks: long, usage: { completion_tokens: expect.any(Number) } });
  expect(summary.message_ids.length).toBeGreaterThanOrEqual(12);
  // A single-chunk conversation's summary is its chunk's own (no second request).
  const short = lines.filter((l) => l.conversation_id === 'short');
  expect(short[1].summary).toBe(short[0].summary);
  const report = JSON.parse(readFileSync(join(p.config.outDir, 'talks.report.json'), 'utf8'));
  expect(report).toMatchObject({ units: long + 1 + mid + 2, completed: long + 1 + mid + 2, failed: [] });
}, 60_000);

it('retrying failed chunks of a written export: each summary waits for its chunks again, then the export is written whole', async () => {
  // A written document's group counts leave Redis with its results, and only the results come
  // back from the archive on retry: the reopened chunk must still complete its conversation's
  // group (a first chunk failed: the summary never came), and a summary must not run before its
  // reopened chunk settles (a middle chunk failed: the summary ran at once, from the old parts).
  p = await startPipeline({ file: import.meta.filename, config: { chunkTokens: 300 } });
  const conv = (id: string, poisoned: number) =>
    JSON.stringify({
      id,
      title: `Talk ${id}`,
      messages: Array.from({ length: 12 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `${i === poisoned ? 'POISONED ' : ''}${id} message ${i}: ${'lorem ipsum dolor sit amet '.repeat(12)}` })),
    });
  const file = join(p.dir, 'talks.jsonl');
  writeFileSync(file, [conv('first', 0), conv('middle', 6)].join('\n'));
  p.engine.setFaults({ reject: { matchText: 'POISONED' } });
  const [docId] = acceptedIds(await p.enqueue([file], { conversationSummary: true }));
  const [first] = await p.wait([docId!], 60_000);
  expect(first!.record).toMatchObject({ state: 'written', failed: 2 });

  // Retry with no worker running: nothing may be due but the two chunks.
  await p.worker!.close({ deadlineMs: 2000 });
  p.engine.setFaults({ reject: null });
  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, LOG_FORMAT: 'json' };
  const r = await runCli(['retry', file], env, { timeoutMs: 60_000 });
  expect(r.code, r.stdout + r.stderr).toBe(0);
  const queue = openQueue('infer', p.config, p.redis, SHARED_INFER_QUEUE);
  try {
    const due = await queue.getJobs(['waiting', 'prioritized', 'delayed', 'active']);
    expect(due.map((j) => j.name).sort()).toEqual(['chunk', 'chunk']);
  } finally {
    await queue.close();
  }

  await p.startWorker();
  const [again] = await p.wait([docId!], 60_000);
  expect(again!.record).toMatchObject({ state: 'written', failed: 0 });
  const lines = readFileSync(join(p.config.outDir, 'talks.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  expect(lines.filter((l) => l.error)).toEqual([]);
  for (const id of ['first', 'middle']) {
    const mine = lines.filter((l) => l.conversation_id === id);
    const chunks = mine.length - 1;
    expect(chunks).toBeGreaterThan(2);
    expect(mine.map((l) => l.chunk)).toEqual([...Array.from({ length: chunks }, (_, i) => i), 'summary']);
    expect(mine.at(-1)).toMatchObject({ chunks, from_chunks: chunks });
  }
}, 120_000);

it("a chunk retried while its conversation's summary is due: the summary waits for it, then is made from every part", async () => {
  // The summary job is due (its chunks all settled, the last one failed) when `docbatch retry` reopens the
  // failed chunk of the running document. The summary must not be made while that chunk runs
  // again (it would count the part as failed and, its job id taken, never be made again).
  p = await startPipeline({ file: import.meta.filename, config: { chunkTokens: 300 } });
  const messages = Array.from({ length: 12 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `${i === 11 ? 'POISONED ' : ''}talk message ${i}: ${'lorem ipsum dolor sit amet '.repeat(12)}` }));
  const file = join(p.dir, 'talks.jsonl');
  writeFileSync(file, JSON.stringify({ id: 'talk', title: 'Talk', messages }));
  p.engine.setFaults({ reject: { matchText: 'POISONED' }, hang: { matchText: 'Below are summaries' } });
  const [docId] = acceptedIds(await p.enqueue([file], { conversationSummary: true }));
  const queue = openQueue('infer', p.config, p.redis, SHARED_INFER_QUEUE);
  try {
    const deadline = Date.now() + 30_000;
    while (!(await queue.getActive()).some((j) => j.name === 'reduce')) {
      if (Date.now() > deadline) throw new Error('the summary never started');
      await new Promise((r) => setTimeout(r, 50));
    }
    // The worker stops: the summary goes back to wait, due.
    await p.worker!.close({ deadlineMs: 1000 });
    expect((await queue.getWaiting()).map((j) => j.name)).toEqual(['reduce']);
  } finally {
    await queue.close();
  }
  p.engine.setFaults({ reject: null, hang: null });
  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, LOG_FORMAT: 'json' };
  const r = await runCli(['retry', file], env, { timeoutMs: 60_000 });
  expect(r.code, r.stdout + r.stderr).toBe(0);
  // A slow engine: the summary is taken long before the chunk's answer is back.
  p.engine.setTiming({ speed: 0.3 });
  await p.startWorker();
  const [done] = await p.wait([docId!], 90_000);
  expect(done!.record).toMatchObject({ state: 'written', failed: 0 });
  const lines = readFileSync(join(p.config.outDir, 'talks.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const chunks = lines.length - 1;
  expect(lines.filter((l) => l.error)).toEqual([]);
  expect(lines.at(-1)).toMatchObject({ chunk: 'summary', chunks, from_chunks: chunks });
  // The summary's request held every part: the last one is a summary, not the placeholder of a
  // part that could not be summarized (the emulator echoes the request text's last words).
  expect(parseEcho(lines.at(-1).summary).text?.last).not.toMatch(/could not be summarized/);
  expect(parseEcho(lines.at(-1).summary).text?.last).toMatch(/dolor sit amet/);
}, 150_000);
