/**
 * gc racing a producer (src/store/gc.ts), on a local blob store and on a real S3-protocol server
 * (s3rver), against a real Redis. gc reads the document index first (`snapshot`) and removes
 * later (`sweep`); the tests run a producer in between, in that order, with no timing involved:
 * a document registered (or a name claimed, or a blob found already stored) after gc read the
 * index keeps its name, its place in the feeding round, its index entries, its results archive
 * and its blobs. What really is left over (an expired record's name, an unused blob, a blob
 * whose producer's pin is older than a day) still goes. A producer that finds a blob while gc is
 * deleting it waits for the delete, then stores it again.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { enqueueFiles } from '../../src/ingest/batch.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { archiveKey } from '../../src/store/archive.ts';
import { BlobPins } from '../../src/store/blob-pins.ts';
import type { BlobStore } from '../../src/store/blobs.ts';
import { DocStore } from '../../src/store/docs.ts';
import { Feeder } from '../../src/store/feed.ts';
import { snapshot, sweep, type GcParts } from '../../src/store/gc.ts';
import { openBlobStore } from '../../src/store/storage.ts';
import { acceptedIds } from '../helpers/pipeline.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { startS3Server, useS3Env, type S3Server } from '../helpers/s3.ts';

const DAY = 86_400_000;

/** Polls `check` until it holds (bounded). */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`not reached: ${what}`);
}
const log = silentLogger();
let s3: S3Server;
let restoreEnv: () => void;
let dir: string;

beforeAll(async () => {
  s3 = await startS3Server(['blobs']);
  restoreEnv = useS3Env(s3.env);
  dir = await mkdtemp(join(tmpdir(), 'docbatch-gcrace-'));
});

afterAll(async () => {
  restoreEnv?.();
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

describe.each(['local', 's3'] as const)('gc racing a producer (%s blob store)', (kind) => {
  let config: Config;
  let redis: Redis;
  let store: DocStore;
  let blobs: BlobStore;
  let parts: GcParts;

  beforeAll(async () => {
    const prefix = uniquePrefix(import.meta.filename);
    config = {
      ...loadConfig({}, {}),
      redisUrl: TEST_REDIS_URL,
      prefix,
      outDir: join(dir, `out-${prefix}`),
      blobDir: kind === 'local' ? join(dir, `blobs-${prefix}`) : `s3://blobs/${prefix}`,
      cacheDir: join(dir, `cache-${prefix}`),
      s3ForcePathStyle: true,
      feedDepth: 2,
      logLevel: 'silent',
    };
    redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    store = new DocStore(redis, prefix);
    blobs = openBlobStore(config);
    const feeder = new Feeder(redis, prefix, () => {
      throw new Error('gc adds no job');
    });
    parts = { store, blobs, feeder, log };
  });

  afterAll(async () => {
    redis?.disconnect();
    await deletePrefix(config.prefix);
  });

  /** Every blob is past the retention: only what a document uses may stay. */
  const later = () => ({ retentionMs: DAY, now: Date.now() + 30 * DAY });

  it('a document enqueued again after gc read the index keeps its name, its round, its index entries, its archive and its blobs', async () => {
    const pdf = join(dir, `${kind}-report.pdf`);
    await writeFile(pdf, numberedPdf(6));
    const [docId] = acceptedIds(await enqueueFiles([pdf], config, log));
    const before = (await store.get(docId!))!;
    const used = [before.meta.blob, before.meta.task.blob];
    // Its record expired (gc has not run since: index entry, name, blobs are still there), and an
    // unrelated blob nobody uses is lying around.
    await redis.del(store.docKey(docId!));
    const unused = await blobs.putBytes(`unused ${kind}`);

    // gc reads the index: nothing is live.
    const snap = await snapshot(store);
    expect(snap.gone).toContain(docId);
    expect(snap.live.size).toBe(0);

    // Meanwhile the same file goes in again: the same document, its blobs found already stored.
    const [again] = await enqueueFiles([pdf], config, log);
    expect(again!.runs![0]).toMatchObject({ docId, outcome: 'enqueued', name: `${kind}-report` });
    const queue = again!.runs![0]!.queue;
    // ... and (a long gc) is even written and archived before gc reaches the archives.
    await blobs.putNamed(archiveKey(docId!, 1), '[0,{"ok":true}]\n');

    // gc goes on with what it read.
    const report = await sweep(parts, snap, later());

    expect(await redis.hget(store.namesKey, `/${kind}-report`)).toBe(docId);
    expect(await parts.feeder.inRound(docId!, queue)).toBe(true);
    expect(await redis.zscore(store.docsKey, docId!)).not.toBeNull();
    expect(await redis.zscore(store.activeKey, docId!)).not.toBeNull();
    expect((await blobs.getNamed(archiveKey(docId!, 1)))?.toString()).toBe('[0,{"ok":true}]\n');
    for (const sha256 of used) expect(await blobs.has(sha256), sha256).toBe(true);
    // What nobody uses still goes.
    expect(await blobs.has(unused.sha256)).toBe(false);
    expect(report.blobs).toBe(1);

    // So another file of the same name cannot take the name: it gets the suffixed one.
    const other = join(dir, 'elsewhere');
    await mkdir(other, { recursive: true });
    await writeFile(join(other, `${kind}-report.pdf`), numberedPdf(2, 7));
    const [second] = await enqueueFiles([join(other, `${kind}-report.pdf`)], config, log);
    expect(second!.runs![0]!.name).not.toBe(`${kind}-report`);
  });

  it('a name a producer claimed before registering its document survives a gc that read the index before', async () => {
    const snap = await snapshot(store);
    const docId = 'd0123456789abcdef0123';
    const name = await store.claimName('claims', 'fresh', docId, 'ab'.repeat(32));
    expect(name).toBe('fresh');
    // A name whose document expired long ago goes.
    await redis.hset(store.namesKey, 'claims/stale', 'dexpired00000000000000');
    const report = await sweep(parts, snap, later());
    expect(await redis.hget(store.namesKey, 'claims/fresh')).toBe(docId);
    expect(await redis.hget(store.namesKey, 'claims/stale')).toBeNull();
    expect(report.names).toBe(1);
  });

  it('a producer that finds a blob while gc is deleting it waits for the delete, then stores it again', async () => {
    const gcPins = new BlobPins(redis, config.prefix);
    const producerPins = new BlobPins(redis, config.prefix, { pollMs: 5 });
    const producerStore = openBlobStore(config, undefined, { guard: producerPins });
    const bytes = `found while collected (${kind})`;
    const ref = await blobs.putBytes(bytes); // no guard: nobody pinned it
    // gc: not pinned, so it is doomed.
    expect(await gcPins.doom(ref.sha256)).toBe(true);
    // A producer stores the same bytes: it pins, sees the doom and waits (it would otherwise find
    // the blob still there, and register a record naming a blob about to go).
    let stored = false;
    const producing = producerStore.putBytes(bytes).then((r) => {
      stored = true;
      return r;
    });
    await until(async () => (await redis.zscore(gcPins.pinsKey, ref.sha256)) !== null, 'the producer pinned the blob');
    expect(stored).toBe(false);
    // Pinned now: another gc leaves it alone.
    expect(await new BlobPins(redis, config.prefix).doom(ref.sha256)).toBe(false);
    // gc deletes, and is done.
    await blobs.deleteBlob(ref.sha256);
    expect(await blobs.has(ref.sha256)).toBe(false);
    await gcPins.release(ref.sha256);
    expect(await producing).toMatchObject({ sha256: ref.sha256 });
    expect(await blobs.has(ref.sha256)).toBe(true);
    expect((await blobs.readAll(ref.sha256)).toString()).toBe(bytes);
  });

  it('a pin older than a day protects nothing and is forgotten', async () => {
    const pins = new BlobPins(redis, config.prefix);
    const ref = await openBlobStore(config, undefined, { guard: pins }).putBytes(`pinned long ago (${kind})`);
    const fresh = await openBlobStore(config, undefined, { guard: pins }).putBytes(`pinned just now (${kind})`);
    await redis.zadd(pins.pinsKey, Date.now() - 2 * DAY, ref.sha256);
    await sweep(parts, await snapshot(store), later());
    expect(await blobs.has(ref.sha256)).toBe(false);
    expect(await redis.zscore(pins.pinsKey, ref.sha256)).toBeNull();
    expect(await blobs.has(fresh.sha256)).toBe(true);
  });
});
