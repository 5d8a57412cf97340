/**
 * Issue 8, item 6: Redis holds only work in flight. Once documents are written no engine answer
 * is left in Redis (the results moved to their archive in the blob store), their records expire
 * after the retention, job history is bounded, and the reconciler's work does not grow with the
 * documents merely waiting their turn. (bench/redis-footprint.ts measures the bytes.)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { footprint } from '../../bench/lib/redis-footprint.ts';
import { archiveKey } from '../../src/store/archive.ts';
import { LocalBlobStore } from '../../src/store/blobs-local.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

/** How many times Redis has run `command` since it started (INFO commandstats). */
async function calls(p: Pipeline, command: string): Promise<number> {
  const info = await p.redis.info('commandstats');
  const m = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info);
  return m ? Number(m[1]) : 0;
}

it('written documents leave no engine answer in Redis; their records expire; their results are archived', async () => {
  p = await startPipeline({ file: import.meta.filename, config: { retentionDays: 2 } });
  const files = Array.from({ length: 12 }, (_, i) => {
    const path = join(p!.dir, `doc-${i}.pdf`);
    writeFileSync(path, numberedPdf(3, i + 1));
    return path;
  });
  const ids = acceptedIds(await p.enqueue(files));
  await p.wait(ids, 60_000);
  const fp = await footprint(p.redis, p.config.prefix);
  expect(fp.resultKeys).toEqual([]);
  expect(fp.byKind['conversation groups']).toBeUndefined();
  const blobs = new LocalBlobStore(p.config.blobDir);
  for (const id of ids) {
    const ttl = await p.redis.ttl(p.store.docKey(id));
    expect(ttl).toBeGreaterThan(86_400);
    expect(ttl).toBeLessThanOrEqual(2 * 86_400);
    const archived = (await blobs.getNamed(archiveKey(id, 1)))!.toString('utf8').trim().split('\n');
    expect(archived).toHaveLength(3);
  }
  // Job history is bounded by count: no more completed unit jobs than the bound.
  expect(await p.redis.zcard(`${p.config.prefix}:infer:completed`)).toBeLessThanOrEqual(100);
}, 90_000);

it("the reconciler does not look into documents waiting their turn, however many", async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, config: { feedDepth: 5 } });
  const files = Array.from({ length: 40 }, (_, i) => {
    const path = join(p!.dir, `wait-${i}.pdf`);
    writeFileSync(path, numberedPdf(4, i + 1));
    return path;
  });
  const ids = acceptedIds(await p.enqueue(files));
  // FEED_DEPTH 5, 4 units per document per turn: one document is fully queued, the rest wait their turn.
  // Waiting: in the feeding round or in its backlog (which of the two depends on when the wait
  // list filled up while the producer fed).
  const waiting = (await p.redis.zcard(`${p.config.prefix}:feed:infer`)) + (await p.redis.zcard(`${p.config.prefix}:feed:infer:backlog`));
  expect(waiting).toBeGreaterThanOrEqual(ids.length - 2);
  await p.writer.reconcile();
  const before = await calls(p, 'hkeys');
  await p.writer.reconcile();
  await p.writer.reconcile();
  // Per-unit looks (HKEYS of a document's results) only at the fully queued documents that did
  // not move (no worker runs), none at the ones waiting their turn.
  expect((await calls(p, 'hkeys')) - before).toBeLessThanOrEqual(2 * (ids.length - waiting));
}, 60_000);
