/**
 * Issue 13: documents enqueued together progress together (a small export does not wait behind a
 * long PDF), `enqueue --priority` goes first, and `worker --exit-when-idle` releases a GPU: it
 * exits 0 once idle, after doing a unit that arrived before the deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'docbatch');
let p: Pipeline | undefined;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await p?.stop();
  p = undefined;
});

function chats(dir: string, name: string, n: number): string {
  const path = join(dir, name);
  writeFileSync(path, `${Array.from({ length: n }, (_, i) => JSON.stringify({ id: `c${i}`, title: `T${i}`, messages: [{ role: 'user', content: `Question ${i}?` }, { role: 'assistant', content: `Answer ${i}.` }] })).join('\n')}\n`);
  return path;
}

describe('fair feeding', () => {
  it('a 6-chunk export enqueued after a 120-page PDF, in the same command, is written long before the PDF', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 3 }, config: { feedDepth: 8 } });
    const pdf = join(p.dir, 'long.pdf');
    writeFileSync(pdf, numberedPdf(120));
    const [pdfId, chatId] = acceptedIds(await p.enqueue([pdf, chats(p.dir, 'small.jsonl', 6)]));
    await p.startWorker({ initialInFlight: 4, maxInFlight: 4, batchSize: 4 });
    const [chat] = await p.wait([chatId!], 60_000);
    expect(chat!.record).toMatchObject({ state: 'written', done: 6 });
    // When the export was written, the PDF was far from done: they went round-robin.
    const long = (await p.store.get(pdfId!))!;
    expect(long.done + long.failed).toBeLessThan(40);
  }, 120_000);

  it('feeds round-robin within a priority class, and the higher class first (the feeder alone, no worker)', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, config: { feedDepth: 4 } });
    const make = (name: string, pages: number, seed: number) => {
      const path = join(p!.dir, name);
      writeFileSync(path, numberedPdf(pages, seed));
      return path;
    };
    const [a, b] = acceptedIds(await p.enqueue([make('a.pdf', 30, 1), make('b.pdf', 30, 2)]));
    const [urgent] = acceptedIds(await p.enqueue([make('urgent.pdf', 10, 3)], { priority: 5 }));
    const [later] = acceptedIds(await p.enqueue([make('later.pdf', 10, 4)]));
    const infer = (await import('../../queues/connect.ts')).openQueue('infer', p.config, p.redis);
    const { Feeder } = await import('../../src/store/feed.ts');
    const feeder = new Feeder(p.redis, p.config.prefix, () => infer);
    // What BullMQ's wait list holds already (FEED_DEPTH 4): the first turn of a.
    const order = async () => (await infer.getJobs(['wait'], 0, 1000, true)).map((j) => `${j.data.docId === a ? 'a' : j.data.docId === b ? 'b' : j.data.docId === urgent ? 'U' : j.data.docId === later ? 'l' : '?'}${j.data.unit}`);
    expect(await order()).toEqual(['a0', 'a1', 'a2', 'a3']);
    await feeder.feed('infer', 26);
    const fed = (await order()).slice(4);
    // Every unit of the urgent document first; then turns of 4 in the order of the round: a (fed
    // its first turn as soon as it was registered, it went back in line before b arrived), b,
    // later (joined after), a again.
    expect(fed.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => `U${i}`));
    expect(fed.slice(10, 26)).toEqual(['a4', 'a5', 'a6', 'a7', 'b0', 'b1', 'b2', 'b3', 'l0', 'l1', 'l2', 'l3', 'a8', 'a9', 'a10', 'a11']);
    await infer.close();
  }, 90_000);
});

describe('the round and its backlog', () => {
  it('feeds at most FEED_DOCUMENTS documents at once, the rest in order as they finish; a higher priority enters at once', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, config: { feedDepth: 1, feedDocuments: 2 } });
    const make = (name: string, pages: number, seed: number) => {
      const path = join(p!.dir, name);
      writeFileSync(path, numberedPdf(pages, seed));
      return path;
    };
    const ids = acceptedIds(await p.enqueue([make('d0.pdf', 4, 1), make('d1.pdf', 4, 2), make('d2.pdf', 4, 3), make('d3.pdf', 4, 4)]));
    const [urgent] = acceptedIds(await p.enqueue([make('urgent.pdf', 4, 5)], { priority: 3 }));
    const names = new Map([...ids.map((id, i) => [id, `d${i}`] as const), [urgent!, 'U']]);
    const infer = (await import('../../queues/connect.ts')).openQueue('infer', p.config, p.redis);
    const { Feeder } = await import('../../src/store/feed.ts');
    const feeder = new Feeder(p.redis, p.config.prefix, () => infer, { documents: 2, slice: 2 });
    // d0 was fed its first turn as soon as it was registered (alone in the round); the others
    // joined the backlog while the wait list was full.
    const round = async () => (await p!.redis.zrange(`${p!.config.prefix}:feed:infer`, '0', '-1')).map((id) => names.get(id));
    expect(await round()).toEqual(['d0']);
    await feeder.feed('infer', 19);
    const order = (await infer.getJobs(['wait'], 0, 1000, true)).map((j) => `${names.get(j.data.docId)}.${j.data.unit}`);
    // d0's first page went at enqueue (FEED_DEPTH 1). Then the urgent one enters the round beside
    // d0 and goes whole first; d1 takes its place when it is fully fed; then turns of 2, each of
    // d2 and d3 entering (with its place from its enqueue) as one before it is fully fed.
    expect(order).toEqual([
      'd0.0', 'U.0', 'U.1', 'U.2', 'U.3',
      'd0.1', 'd0.2', 'd1.0', 'd1.1', 'd0.3',
      'd2.0', 'd2.1', 'd1.2', 'd1.3', 'd3.0', 'd3.1', 'd2.2', 'd2.3', 'd3.2', 'd3.3',
    ]);
    expect(await round()).toEqual([]);
    await infer.close();
  }, 60_000);
});

describe('enqueued again with another --priority', () => {
  it('a document waiting in the backlog moves to its new class: it enters the round at the next feed', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, config: { feedDepth: 1, feedDocuments: 2 } });
    const files = [1, 2, 3, 4].map((seed) => {
      const path = join(p!.dir, `w${seed}.pdf`);
      writeFileSync(path, numberedPdf(2, seed));
      return path;
    });
    const ids = acceptedIds(await p.enqueue(files));
    // The last one, asked for again first: its record and its place in line.
    const [again] = await p.enqueue([files[3]!], { priority: 3 });
    expect(again!.runs?.map((r) => [r.docId, r.outcome])).toEqual([[ids[3], 'resumed']]);
    const names = new Map(ids.map((id, i) => [id, `w${i}`] as const));
    const infer = (await import('../../queues/connect.ts')).openQueue('infer', p.config, p.redis);
    const { Feeder } = await import('../../src/store/feed.ts');
    const feeder = new Feeder(p.redis, p.config.prefix, () => infer, { documents: 2, slice: 2 });
    await feeder.feed('infer', 7);
    const order = (await infer.getJobs(['wait'], 0, 1000, true)).map((j) => `${names.get(j.data.docId)}.${j.data.unit}`);
    // w0's first page went at enqueue (FEED_DEPTH 1); then w3, now of the higher class, whole.
    expect(order.slice(0, 3)).toEqual(['w0.0', 'w3.0', 'w3.1']);
    await infer.close();
  }, 60_000);
});

describe('--exit-when-idle', () => {
  it('does a unit that arrives before the deadline, then drains and exits 0 once idle; nothing is lost', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false });
    let logs = '';
    const child = spawn(BIN, ['worker', '--exit-when-idle', '8'], {
      env: { PATH: process.env.PATH, REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, ENGINE_URL: p.engine.url, BLOB_DIR: p.config.blobDir, RENDERERS: '1', LOG_FORMAT: 'json' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    child.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    for (let i = 0; i < 400 && !logs.includes('worker started'); i++) await new Promise((r) => setTimeout(r, 25));
    expect(logs).toContain('worker started');
    await new Promise((r) => setTimeout(r, 1000)); // idle a while (less than the limit), then work arrives
    const pdf = join(p.dir, 'late.pdf');
    writeFileSync(pdf, numberedPdf(5));
    const ids = acceptedIds(await p.enqueue([pdf]));
    const [done] = await p.wait(ids, 60_000);
    expect(done!.record).toMatchObject({ done: 5, failed: 0 });
    const finished = Date.now();
    expect(await exited).toBe(0);
    // It waited its idle limit after the last unit, not less.
    expect(Date.now() - finished).toBeGreaterThanOrEqual(6000);
    expect(logs).toMatch(/no work for the idle limit: stopping/);
    expect(await p.redis.llen(`${p.config.prefix}:infer:wait`)).toBe(0);
  }, 90_000);
});
