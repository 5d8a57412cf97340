/**
 * Review findings 1 and 2: retries racing a write, and restores racing each other. Each race is
 * driven in a fixed order, not by timing: the writer's `beforeArchive` hook holds a write between
 * its outputs and its archive while a retry lands; a blob store that holds one reader's archive
 * read lets another retry run to the end first; a Redis connection cut after its k-th command
 * stands for a restorer that dies part-way (every k, so every place it can die).
 *
 * What must hold: a retry that lands during a write ends with the document written again with
 * the retried unit's new answer, no unit sent twice and no key of the document left without
 * expiry; two restores of one archive never bring back an old failure over a new answer; a
 * restore cut off part-way never passes for a whole one.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis, type Command } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { openQueue, type TypedQueue } from '../../queues/connect.ts';
import { unitJobId, writeJobId } from '../../queues/contracts.ts';
import { SHARED_INFER_QUEUE } from '../../queues/routes.ts';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { retryDocuments } from '../../src/ingest/retry.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { restoreArchived } from '../../src/store/archive.ts';
import type { BlobStore } from '../../src/store/blobs.ts';
import { ChunkReader } from '../../src/store/chunk-index.ts';
import { DocStore } from '../../src/store/docs.ts';
import { Feeder } from '../../src/store/feed.ts';
import { moveAndRewrite, reopenDocument, type ReopenParts } from '../../src/store/reopen.ts';
import { settleUnit } from '../../src/store/settle.ts';
import { openBlobStore } from '../../src/store/storage.ts';
import type { UnitResult } from '../../src/store/types.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close().catch(() => {});
  await p?.stop();
  p = undefined;
});

/** Polls `check` until it returns a value, or fails naming what it waited for. */
async function until<T>(what: string, check: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = await check();
    if (out) return out;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The document's keys that would live for ever. */
async function keysWithoutExpiry(pipeline: Pipeline, docId: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await pipeline.redis.scan(cursor, 'MATCH', `${pipeline.config.prefix}:doc:${docId}*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) if ((await pipeline.redis.ttl(key)) === -1) out.push(key);
  } while (cursor !== '0');
  return out;
}

/** What `docbatch retry` and the dashboard hand reopenDocument, on the pipeline's Redis. */
function reopenParts(pipeline: Pipeline, blobs: BlobStore = openBlobStore(pipeline.config)): ReopenParts {
  const queues = new Map<string, TypedQueue<'infer'>>();
  const inferQueue = (name: string) => {
    let q = queues.get(name);
    if (!q) queues.set(name, (q = openQueue('infer', pipeline.config, pipeline.redis, name)));
    return q;
  };
  const writeQueue = openQueue('write', pipeline.config, pipeline.redis);
  closers.push(() => Promise.all([...[...queues.values()].map((q) => q.close()), writeQueue.close()]));
  return { store: pipeline.store, blobs, chunks: new ChunkReader(blobs), feeder: new Feeder(pipeline.redis, pipeline.config.prefix, inferQueue), writeQueue, inferQueue };
}

/** The real blob store, but the first archive read is handed over only once `release()` is called. */
function heldArchiveRead(blobs: BlobStore): { blobs: BlobStore; reached: Promise<void>; release: () => void } {
  let reached!: () => void;
  let release!: () => void;
  const reachedP = new Promise<void>((r) => (reached = r));
  const released = new Promise<void>((r) => (release = r));
  let first = true;
  const held = Object.create(blobs) as BlobStore;
  held.openNamed = async (key: string) => {
    const body = await blobs.openNamed(key);
    if (first) {
      first = false;
      reached();
      await released;
    }
    return body;
  };
  return { blobs: held, reached: reachedP, release };
}

/** The output's pages once it says what `ready` wants. */
function pagesOf(pipeline: Pipeline, name: string) {
  return parsePages(readFileSync(join(pipeline.config.outDir, name), 'utf8'));
}

describe('a retry that lands during a write', () => {
  it("Bull Board's Retry of a failed unit whose answer settles before the write ends: written again with it", async () => {
    let hold: ((docId: string, gen: number) => Promise<void>) | null = null;
    p = await startPipeline({ file: import.meta.filename, config: { imageSize: 384, pageMaxTokens: 200 }, writer: { beforeArchive: (docId, gen) => (hold ? hold(docId, gen) : Promise.resolve()) } });
    const pipeline = p;
    pipeline.engine.setFaults({ reject: { matchText: 'Page 2 of 3' } });
    const queue = openQueue('infer', pipeline.config, pipeline.redis, SHARED_INFER_QUEUE);
    closers.push(() => queue.close());
    let sent = -1;
    hold = async (docId, gen) => {
      hold = null; // the first write only
      // The write has read the results (page 2 failed) and written the outputs; now the board retries page 2.
      pipeline.engine.setFaults({ reject: null });
      const job = await until('the failed unit job', async () => {
        const j = await queue.getJob(unitJobId(docId, gen, 1));
        return j && (await j.getState()) === 'failed' ? j : null;
      });
      sent = pipeline.engine.stats().requests;
      await job.retry('failed');
      await until("page 2's new answer", async () => (await pipeline.store.unitResult(docId, gen, 1))?.ok);
    };
    const file = join(pipeline.dir, 'during.pdf');
    writeFileSync(file, numberedPdf(3, 12));
    const [docId] = acceptedIds(await pipeline.enqueue([file]));

    const record = await until('the document written with page 2 answered', async () => {
      const r = await pipeline.store.get(docId!);
      return r?.state === 'written' && pagesOf(pipeline, 'during.md').get(2)?.failed === null ? r : null;
    });
    expect(record).toMatchObject({ done: 3, failed: 0 });
    expect(pagesOf(pipeline, 'during.md').get(2)!.body).toContain('first="Page 2 of 3');
    expect(pipeline.engine.stats().requests - sent).toBe(1);
    expect(await keysWithoutExpiry(pipeline, docId!)).toEqual([]);
  }, 90_000);

  it('docbatch retry of a unit that settles after the write ended: written again with its answer', async () => {
    let hold: ((docId: string, gen: number) => Promise<void>) | null = null;
    p = await startPipeline({ file: import.meta.filename, config: { imageSize: 384, pageMaxTokens: 200 }, writer: { beforeArchive: (docId, gen) => (hold ? hold(docId, gen) : Promise.resolve()) } });
    const pipeline = p;
    pipeline.engine.setFaults({ reject: { matchText: 'Page 2 of 3' } });
    let retried: number[] = [];
    hold = async (docId) => {
      hold = null;
      // Nobody answers the unit until this write is over: the worker stops, then the retry lands.
      await pipeline.worker!.close({ deadlineMs: 2000 });
      pipeline.engine.setFaults({ reject: null });
      const { outcomes } = await retryDocuments([docId], pipeline.config, silentLogger());
      retried = outcomes.flatMap((o) => o.reopened);
    };
    const file = join(pipeline.dir, 'after.pdf');
    writeFileSync(file, numberedPdf(3, 12));
    const [docId] = acceptedIds(await pipeline.enqueue([file]));
    const writes = openQueue('write', pipeline.config, pipeline.redis);
    closers.push(() => writes.close());
    await until('the first write job to end', async () => {
      const job = await writes.getJob(writeJobId(docId!, 1));
      return job && hold === null && ['completed', 'failed'].includes(await job.getState());
    });
    expect(retried).toEqual([1]);

    await pipeline.startWorker();
    const sent = pipeline.engine.stats().requests;
    const record = await until('the document written with page 2 answered', async () => {
      const r = await pipeline.store.get(docId!);
      return r?.state === 'written' && pagesOf(pipeline, 'after.md').get(2)?.failed === null ? r : null;
    });
    expect(record).toMatchObject({ done: 3, failed: 0 });
    expect(pagesOf(pipeline, 'after.md').get(2)!.body).toContain('first="Page 2 of 3');
    expect(pipeline.engine.stats().requests - sent).toBe(1);
    expect(await keysWithoutExpiry(pipeline, docId!)).toEqual([]);
  }, 90_000);
});

describe('moving a written document to another --out folder while another mover does', () => {
  it('to the same folder: both succeed and it is written there, nothing run again; to another: the slower one is refused', async () => {
    p = await startPipeline({ file: import.meta.filename });
    const pipeline = p;
    const file = join(pipeline.dir, 'mover.pdf');
    writeFileSync(file, numberedPdf(2));
    const [docId] = acceptedIds(await pipeline.enqueue([file]));
    const [first] = await pipeline.wait([docId!]);
    const stale = first!.record;
    const requests = pipeline.engine.stats().requests;
    const parts = reopenParts(pipeline);

    // A has read the record and is restoring its results when B moves it to the same place.
    const held = heldArchiveRead(parts.blobs);
    const target = { ...stale.meta, outSub: 'same', name: 'mover' };
    const a = moveAndRewrite({ ...parts, blobs: held.blobs }, stale, target);
    await held.reached;
    expect(await moveAndRewrite(parts, stale, target)).toBe(true);
    held.release();
    expect(await a).toBe(true);
    const [moved] = await pipeline.wait([docId!]);
    expect(moved!.record.meta).toMatchObject({ outSub: 'same', name: 'mover' });
    expect(existsSync(join(pipeline.config.outDir, 'same', 'mover.md'))).toBe(true);

    // C read the record before that move and wants another folder: refused, nothing changed.
    expect(await moveAndRewrite(parts, stale, { ...stale.meta, outSub: 'other', name: 'mover' })).toBe(false);
    expect((await pipeline.store.get(docId!))!.meta.outSub).toBe('same');
    expect(pipeline.engine.stats().requests).toBe(requests);
  }, 60_000);
});

describe("restoring a written document's results", () => {
  // B's page 3 is answered after A's restore (a worker picks it up then), as A's restore lands
  // (the answer was on its way: settled here), or before (B's rewrite already ended).
  it.each(['before', 'as', 'after'] as const)(
    'two retries of one written document: the slower restore lands %s the other retry\u2019s answer settles, and brings back no old failure',
    async (order) => {
      p = await startPipeline({ file: import.meta.filename, config: { imageSize: 384, pageMaxTokens: 200 } });
      const pipeline = p;
      pipeline.engine.setFaults({ reject: { matchText: ['Page 2 of 4', 'Page 3 of 4'] } });
      const file = join(pipeline.dir, 'twice.pdf');
      writeFileSync(file, numberedPdf(4, 12));
      const [docId] = acceptedIds(await pipeline.enqueue([file]));
      const [first] = await pipeline.wait([docId!], 60_000);
      expect(first!.record).toMatchObject({ state: 'written', done: 2, failed: 2 });
      await pipeline.worker!.close({ deadlineMs: 2000 });
      pipeline.engine.setFaults({ reject: null });

      // A (Bull Board's Retry of page 2) has seen no results in Redis and is reading the archive...
      const parts = reopenParts(pipeline);
      const held = heldArchiveRead(parts.blobs);
      const a = reopenDocument({ ...parts, blobs: held.blobs }, first!.record, { units: [1] });
      await held.reached;
      // ... while B (the Retry of page 3) restores the archive and reopens page 3.
      const b = await reopenDocument(parts, first!.record, { units: [2] });
      expect(b.reopened).toEqual([2]);
      let sent = 0;
      if (order === 'after') {
        await pipeline.startWorker();
        sent = pipeline.engine.stats().requests;
        await until('page 3 answered and written', async () => {
          const r = await pipeline.store.get(docId!);
          return r?.state === 'written' && r.failed === 1 && pagesOf(pipeline, 'twice.md').get(3)?.failed === null;
        });
      }
      held.release();
      expect((await a).reopened).toEqual([1]);
      if (order === 'as') {
        const answer: UnitResult = { ok: true, text: 'page 3, answered as A restored', promptTokens: 1, completionTokens: 1, engineMs: 1, latencyMs: 1, model: 'synthetic', finishReason: 'stop' };
        const settled = await settleUnit({ store: pipeline.store, writeQueue: parts.writeQueue, inferQueue: parts.inferQueue, chunks: parts.chunks }, { data: { docId: docId!, gen: first!.record.gen, unit: 2 }, meta: first!.record.meta, result: answer });
        expect(settled.outcome).toBe('recorded');
      }
      if (order !== 'after') {
        await pipeline.startWorker();
        sent = pipeline.engine.stats().requests;
      }

      const record = await until('the document written whole', async () => {
        const r = await pipeline.store.get(docId!);
        return r?.state === 'written' && r.failed === 0 ? r : null;
      });
      expect(record).toMatchObject({ done: 4, failed: 0 });
      const pages = pagesOf(pipeline, 'twice.md');
      expect([...pages.values()].map((page) => page.failed)).toEqual([null, null, null, null]);
      if (order === 'as') expect(pages.get(3)!.body).toBe('page 3, answered as A restored');
      else expect(pages.get(3)!.body).toContain('first="Page 3 of 4');
      // Each retried page went to the engine once (page 3 did not, when its answer was settled here).
      expect(pipeline.engine.stats().requests - sent).toBe(order === 'as' ? 1 : 2);
      expect(await keysWithoutExpiry(pipeline, docId!)).toEqual([]);
    },
    120_000,
  );

  it('a restore cut off anywhere leaves nothing that passes for restored; the next restores it all and only failed units run', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, config: { imageSize: 384, pageMaxTokens: 200 } });
    const pipeline = p;
    // More results than one restore command carries (1000): settled here rather than by the engine.
    const units = 1200;
    const failedUnits = [5, 700];
    const file = join(pipeline.dir, 'long.pdf');
    writeFileSync(file, numberedPdf(units, 4));
    const [docId] = acceptedIds(await pipeline.enqueue([file]));
    const registered = (await pipeline.store.get(docId!))!;
    const parts = reopenParts(pipeline);
    for (let unit = 0; unit < units; unit++) {
      const result: UnitResult = failedUnits.includes(unit)
        ? { ok: false, code: 'BAD_REQUEST', message: 'refused' }
        : { ok: true, text: `settled by the test ${unit}`, promptTokens: 1, completionTokens: 1, engineMs: 1, latencyMs: 1, model: 'synthetic', finishReason: 'stop' };
      await settleUnit({ store: pipeline.store, writeQueue: parts.writeQueue, inferQueue: parts.inferQueue, chunks: parts.chunks }, { data: { docId: docId!, gen: registered.gen, unit }, meta: registered.meta, result });
    }
    const [written] = await pipeline.wait([docId!], 60_000);
    expect(written!.record).toMatchObject({ state: 'written', done: units - 2, failed: 2 });
    expect(await pipeline.redis.exists(pipeline.store.unitsKey(docId!, registered.gen))).toBe(0);

    // A restorer whose Redis goes away right after its k-th command, for k = 1, 2, ... until one finishes.
    for (let k = 1; ; k++) {
      const conn = new Redis(pipeline.config.redisUrl, { maxRetriesPerRequest: 1 });
      conn.on('error', () => {});
      const send = conn.sendCommand.bind(conn);
      let n = 0;
      conn.sendCommand = ((command: Command, stream?: never) => {
        const out = send(command, stream);
        if (++n === k) void command.promise.then(() => conn.disconnect(), () => conn.disconnect());
        return out;
      }) as typeof conn.sendCommand;
      const finished = await restoreArchived(new DocStore(conn, pipeline.config.prefix), parts.blobs, docId!, registered.gen).then(
        () => true,
        () => false,
      );
      conn.disconnect();
      const present = await pipeline.redis.hlen(pipeline.store.unitsKey(docId!, registered.gen));
      expect([0, units], `results in Redis after a restore cut after command ${k}`).toContain(present);
      if (finished) {
        expect(present).toBe(units);
        break;
      }
      expect(k).toBeLessThan(100);
    }

    const outcome = await reopenDocument(parts, written!.record);
    expect(outcome.reopened).toEqual(failedUnits);
    await pipeline.startWorker();
    const sent = pipeline.engine.stats().requests;
    const record = await until('the document written whole', async () => {
      const r = await pipeline.store.get(docId!);
      return r?.state === 'written' && r.failed === 0 ? r : null;
    }, 60_000);
    expect(record).toMatchObject({ done: units, failed: 0 });
    expect(pipeline.engine.stats().requests - sent).toBe(failedUnits.length);
    const pages = pagesOf(pipeline, 'long.md');
    expect(pages.size).toBe(units);
    for (const [n, page] of pages) {
      if (failedUnits.includes(n - 1)) expect(page.body, `page ${n}`).toContain(`first="Page ${n} of ${units}`);
      else if (page.body !== `settled by the test ${n - 1}`) expect.fail(`page ${n} was answered again: ${page.body.slice(0, 80)}`);
    }
    expect(await keysWithoutExpiry(pipeline, docId!)).toEqual([]);
  }, 180_000);
});
