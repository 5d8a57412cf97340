/**
 * Processes killed (SIGKILL) at chosen moments, not at random: a Redis forwarder
 * (test/helpers/redis-tripwire.ts) lets the command that marks the moment through, holds every
 * later one and kills the process. After each, with the process started again (or another one),
 * every unit is in the output exactly once and no output is partial.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { openQueue } from '../../queues/connect.ts';
import type { Config } from '../../src/config.ts';
import { startEmulator } from '../../src/emulator/index.ts';
import { BIN, runCli } from '../helpers/cli.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { startRedisTripwire, type RedisTripwire } from '../helpers/redis-tripwire.ts';
import { until } from '../helpers/until.ts';

const FAST_LOCKS: Partial<Config> = { lockDurationMs: 3000, stalledIntervalMs: 1000 };

let p: Pipeline | undefined;
let wire: RedisTripwire | undefined;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await wire?.close();
  wire = undefined;
  await p?.stop();
  p = undefined;
});

/** A docbatch verb in its own process, configured like the pipeline's, talking to Redis at `redisUrl`. */
export function spawnVerb(args: string[], config: Config, redisUrl: string, extra: Record<string, string> = {}): { child: ChildProcess; logs: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  let logs = '';
  const child = spawn(BIN, args, {
    env: {
      PATH: process.env.PATH,
      REDIS_URL: redisUrl,
      DOCBATCH_PREFIX: config.prefix,
      ENGINE_URL: config.engineUrl,
      BLOB_DIR: config.blobDir,
      OUT_DIR: config.outDir,
      RENDERERS: '1',
      LOCK_DURATION_MS: String(config.lockDurationMs),
      STALLED_INTERVAL_MS: String(config.stalledIntervalMs),
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  children.push(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, logs: () => logs, exited };
}

function expectEveryPageOnce(md: string, pages: number): void {
  expect([...md.matchAll(/^<!-- page (\d+)/gm)].map((m) => Number(m[1]))).toEqual(Array.from({ length: pages }, (_, i) => i + 1));
  for (const [n, page] of parsePages(md)) {
    expect(page.failed, `page ${n}`).toBeNull();
    expect(page.body).toContain(`Page ${n} of ${pages}`);
  }
}

describe('a worker killed between storing the last result and handing the document to the writer', () => {
  it('the document is written once another worker takes over; no page goes to the engine twice', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 20 }, config: FAST_LOCKS });
    const pdf = join(p.dir, 'last.pdf');
    writeFileSync(pdf, numberedPdf(4));
    const [docId] = acceptedIds(await p.enqueue([pdf]));
    const writeKey = `${p.config.prefix}:write:${docId}.1`;
    let victim: ReturnType<typeof spawnVerb> | undefined;
    // The first command of handing the document to the writer (ensureWriteJob reads the write job).
    wire = await startRedisTripwire({ trip: (b) => b.includes(writeKey), before: true, onTrip: () => victim!.child.kill('SIGKILL') });
    victim = spawnVerb(['worker'], p.config, wire.url);
    await victim.exited;
    expect(wire.tripped()).toBe(true);
    const record = (await p.store.get(docId!))!;
    expect(record.done).toBe(4);
    expect(record.state).not.toBe('written');
    const answered = p.engine.stats().completed;
    await p.startWorker();
    const [done] = await p.wait([docId!], 60_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 4, failed: 0 });
    expectEveryPageOnce(readFileSync(join(p.config.outDir, 'last.md'), 'utf8'), 4);
    // Nothing answered twice (the new worker's image probe aside).
    expect(p.engine.stats().completed - answered).toBeLessThanOrEqual(1);
  }, 90_000);
});

describe('a writer killed between marking the last of several models\u2019 runs written and comparing them', () => {
  it('X.compare.json is written by the writer that takes the job over', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { model: 'model-a', speed: 50 }, config: FAST_LOCKS });
    await p.writer.close(); // writers here are processes of their own
    const engineB = await startEmulator({ model: 'model-b', speed: 50, outputTokensMin: 20, outputTokensMax: 60 });
    try {
      await p.startWorker({ workerName: 'gpu-a', imageSize: 512 });
      await p.startWorker({ workerName: 'gpu-b', engineUrl: engineB.url, imageSize: 512 });
      const pdf = join(p.dir, 'report.pdf');
      writeFileSync(pdf, numberedPdf(3));
      const ids = acceptedIds(await p.enqueue([pdf], { task: { models: ['model-a', 'model-b'] } }));
      await until('both runs answered', async () => (await Promise.all(ids.map((id) => p!.store.get(id)))).every((r) => r?.state === 'complete'));
      let victim: ReturnType<typeof spawnVerb> | undefined;
      // Whichever run is marked written last claims the comparison's name: the writer dies there.
      wire = await startRedisTripwire({ trip: (b) => b.includes('/report.compare'), before: true, onTrip: () => victim!.child.kill('SIGKILL') });
      victim = spawnVerb(['writer'], p.config, wire.url);
      await victim.exited;
      expect(wire.tripped()).toBe(true);
      for (const id of ids) expect((await p.store.get(id))!.state).toBe('written');
      const target = join(p.config.outDir, 'report.compare.json');
      expect(existsSync(target)).toBe(false);
      const writer = spawnVerb(['writer'], p.config, p.config.redisUrl);
      await until('X.compare.json', async () => existsSync(target), 30_000).catch(() => {});
      writer.child.kill('SIGTERM');
      await writer.exited;
      expect(existsSync(target), writer.logs()).toBe(true);
      expect(JSON.parse(readFileSync(target, 'utf8'))).toMatchObject({ models: ['model-a', 'model-b'], missing: [] });
      // Nothing left saying a comparison is due.
      for (const id of ids) expect(await p.redis.hget(p.store.docKey(id), 'compare_due')).toBeNull();
    } finally {
      await engineB.close();
    }
  }, 90_000);
});

describe('docbatch retry killed part-way', () => {
  it('right after reopening the failed units: the retry still happens; the old failures do not come back', async () => {
    // The reconciler runs only when the test says (a writer's runs every 30 s).
    p = await startPipeline({ file: import.meta.filename, emulator: { reject: { matchText: 'Page 2 of 4' } }, config: FAST_LOCKS, writer: { reconcileIntervalMs: 3_600_000 } });
    const pdf = join(p.dir, 'refused.pdf');
    writeFileSync(pdf, numberedPdf(4));
    const [docId] = acceptedIds(await p.enqueue([pdf]));
    const [first] = await p.wait([docId!]);
    expect(first!.record).toMatchObject({ state: 'written', done: 3, failed: 1 });
    p.engine.setFaults({ reject: null });
    let victim: ReturnType<typeof spawnVerb> | undefined;
    // The reopen is the one command of a retry that names the document's groups hash.
    wire = await startRedisTripwire({ trip: (b) => b.includes(`:doc:${docId}:g:1\r\n`), onTrip: () => victim!.child.kill('SIGKILL') });
    victim = spawnVerb(['retry', pdf], p.config, wire.url);
    await victim.exited;
    expect(wire.tripped()).toBe(true);
    const reopened = (await p.store.get(docId!))!;
    expect(reopened).toMatchObject({ state: 'running', done: 3, failed: 0, reopens: 1 });
    // Run again at once, the reconciler not having looked yet.
    // It says the document is still running (not 'nothing to retry'), and --wait waits for it
    // while the reconciler queues the reopened unit again.
    const rerun = spawnVerb(['retry', pdf, '--wait'], p.config, p.config.redisUrl);
    let ended = false;
    void rerun.exited.then(() => (ended = true));
    for (const end = Date.now() + 20_000; !ended && !/still running/.test(rerun.logs()) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
    expect(rerun.logs()).toMatch(new RegExp(`^${docId}  still running: nothing to retry until it ends`, 'm'));
    for (const end = Date.now() + 60_000; !ended && Date.now() < end; ) {
      await p.writer.reconcile();
      await new Promise((r) => setTimeout(r, 200));
    }
    expect((await rerun.exited).code, rerun.logs()).toBe(0);
    expect(rerun.logs()).toMatch(new RegExp(`^${docId}  written  .*: 4/4 done → `, 'm'));
    const record = (await p.store.get(docId!))!;
    expect(record).toMatchObject({ state: 'written', done: 4, failed: 0 });
    expect(parsePages(readFileSync(join(p.config.outDir, 'refused.md'), 'utf8')).get(2)).toMatchObject({ failed: null });
  }, 120_000);
});

describe('docbatch enqueue of a folder killed part-way, then run again', () => {
  // Marks of a producer's steps in what it sends Redis: a name claim names the names hash and
  // the claim key; a record's registration names the index of documents and the active set.
  const moments: Array<[string, (b: Buffer) => boolean]> = [
    ['after claiming the second file’s name, before registering its record', (b) => b.includes(':names\r\n') && b.includes(':claim\r\n')],
    ['after registering the second file’s record, before queueing it', (b) => b.includes(':docs\r\n') && b.includes(':active\r\n')],
  ];
  it.each(moments)('%s: every file once, under its own name, every page once', async (_moment, mark) => {
    p = await startPipeline({ file: import.meta.filename, emulator: { speed: 50 }, config: FAST_LOCKS });
    const inbox = join(p.dir, 'inbox');
    mkdirSync(inbox);
    for (let i = 1; i <= 4; i++) writeFileSync(join(inbox, `f${i}.pdf`), numberedPdf(i, 50 + i));
    let seen = 0;
    let victim: ReturnType<typeof spawnVerb> | undefined;
    wire = await startRedisTripwire({ trip: (b) => mark(b) && ++seen === 2, onTrip: () => victim!.child.kill('SIGKILL') });
    victim = spawnVerb(['enqueue', inbox], p.config, wire.url);
    expect((await victim.exited).signal).toBe('SIGKILL');
    // Killed where meant: two names claimed, and one record (claim) or two, the second not queued (register).
    expect(await p.redis.hlen(p.store.namesKey)).toBe(2);
    expect(await p.redis.zcard(`${p.config.prefix}:docs`)).toBe(mark(Buffer.from(':names\r\n:claim\r\n')) ? 1 : 2);
    const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir };
    const again = await runCli(['enqueue', inbox, '--wait'], env, { timeoutMs: 60_000 });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(await p.redis.zcard(`${p.config.prefix}:docs`)).toBe(4);
    expect(readdirSync(p.config.outDir).sort()).toEqual([1, 2, 3, 4].flatMap((i) => [`f${i}.md`, `f${i}.report.json`]));
    for (let i = 1; i <= 4; i++) expectEveryPageOnce(readFileSync(join(p.config.outDir, `f${i}.md`), 'utf8'), i);
  }, 90_000);
});

describe('docbatch gc killed while deleting an unused blob', () => {
  it('a producer that enqueues that content again is held up for seconds, not ten minutes', async () => {
    p = await startPipeline({ file: import.meta.filename, emulator: { speed: 50 }, config: FAST_LOCKS });
    const pdf = join(p.dir, 'old.pdf');
    writeFileSync(pdf, numberedPdf(2));
    const [docId] = acceptedIds(await p.enqueue([pdf]));
    const [done] = await p.wait([docId!]);
    const blob = done!.record.meta.blob;
    // Its record expired long ago (its jobs left BullMQ's history long before), its blob is
    // unused since and no producer pinned it lately.
    await p.redis.del(p.store.docKey(docId!));
    for (const name of ['infer', 'write'] as const) {
      const queue = openQueue(name, p.config, p.redis);
      await queue.obliterate({ force: true });
      await queue.close();
    }
    const long = new Date(Date.now() - 30 * 86_400_000);
    utimesSync(join(p.config.blobDir, blob.slice(0, 2), blob), long, long);
    await p.redis.zadd(`${p.config.prefix}:blob-pins`, long.getTime(), blob);
    let victim: ReturnType<typeof spawnVerb> | undefined;
    // gc marks the blob as being deleted, and dies before deleting it.
    wire = await startRedisTripwire({ trip: (b) => b.includes(`:blob-gc:${blob}\r\n`), onTrip: () => victim!.child.kill('SIGKILL') });
    victim = spawnVerb(['gc'], p.config, wire.url);
    await victim.exited;
    expect(wire.tripped()).toBe(true);
    expect(await p.redis.pttl(`${p.config.prefix}:blob-gc:${blob}`)).toBeGreaterThan(0);
    const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir };
    const started = Date.now();
    const again = await runCli(['enqueue', pdf, '--wait'], env, { timeoutMs: 60_000 });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(30_000);
    expectEveryPageOnce(readFileSync(join(p.config.outDir, 'old.md'), 'utf8'), 2);
  }, 120_000);
});

describe('docbatch enqueue killed while holding its queue\u2019s feed lock', () => {
  it('the queue is fed again within seconds, not after the 30 s the lock used to live', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 50 }, config: FAST_LOCKS });
    const pdf = join(p.dir, 'fed.pdf');
    writeFileSync(pdf, numberedPdf(3));
    let victim: ReturnType<typeof spawnVerb> | undefined;
    // The producer has registered the document (it is in the round) and takes the lock to feed it.
    wire = await startRedisTripwire({ trip: (b) => b.includes(':feed:infer:lock\r\n') && b.includes('\r\nNX\r\n'), onTrip: () => victim!.child.kill('SIGKILL') });
    victim = spawnVerb(['enqueue', pdf], p.config, wire.url);
    expect((await victim.exited).signal).toBe('SIGKILL');
    expect(wire.tripped()).toBe(true);
    const lockKey = `${p.config.prefix}:feed:infer:lock`;
    expect(await p.redis.pttl(lockKey), 'the dead producer holds the lock').toBeGreaterThan(0);
    expect(await p.redis.llen(`${p.config.prefix}:infer:wait`), 'nothing fed yet').toBe(0);
    const [docId] = await p.redis.zrange(`${p.config.prefix}:docs`, '0', '-1');
    const started = Date.now();
    await p.startWorker();
    const [done] = await p.wait([docId!], 60_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 3 });
    // The worker feeds every 250 ms: what is left of the dead holder's lock, and the pages.
    expect(Date.now() - started).toBeLessThan(10_000);
    expectEveryPageOnce(readFileSync(join(p.config.outDir, 'fed.md'), 'utf8'), 3);
  }, 90_000);
});
