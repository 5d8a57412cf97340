/**
 * Review finding 1: retries racing a write, driven in a fixed order, not by timing: the writer's
 * `beforeArchive` hook holds a write between its outputs and its archive while a retry lands.
 * What must hold: the document ends written again with the retried unit's new answer, no unit
 * sent twice, and no key of the document left without expiry.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openQueue } from '../../queues/connect.ts';
import { unitJobId, writeJobId } from '../../queues/contracts.ts';
import { SHARED_INFER_QUEUE } from '../../queues/routes.ts';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { retryDocuments } from '../../src/ingest/retry.ts';
import { silentLogger } from '../../src/observe/log.ts';
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
