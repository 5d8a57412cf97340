/**
 * The blob store on S3 (src/store/blobs-s3.ts) against a real S3-protocol server (s3rver):
 * the key layout, whole reads and ranged reads, the local cache for renderers, named objects,
 * gc listing and deleting, and whose fault a failed read is (BLOB_STORE_UNAVAILABLE for a bucket
 * missing, credentials refused or a store not answering; BLOB_MISSING for a key missing from a
 * bucket that answers).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DocbatchError } from '../../src/errors.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { archiveKey } from '../../src/store/archive.ts';
import { BlobCache } from '../../src/store/blob-cache.ts';
import { S3BlobStore } from '../../src/store/blobs-s3.ts';
import { DocStore } from '../../src/store/docs.ts';
import { Feeder } from '../../src/store/feed.ts';
import { collect } from '../../src/store/gc.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { startS3Server, testClient, type S3Server } from '../helpers/s3.ts';

let s3: S3Server;
let dir: string;
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function store(options: { bucket?: string; prefix?: string; endpoint?: string; key?: string; cacheBytes?: number } = {}): S3BlobStore {
  return new S3BlobStore({
    client: testClient(options.endpoint ?? s3.endpoint, { ...(options.key ? { key: options.key } : {}), maxAttempts: 1 }),
    location: { bucket: options.bucket ?? 'blobs', prefix: options.prefix ?? 'team/store' },
    cache: new BlobCache({ dir: join(dir, 'cache'), maxBytes: options.cacheBytes ?? 1 << 30 }),
  });
}

async function rejection(p: Promise<unknown>): Promise<DocbatchError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DocbatchError);
  return err as DocbatchError;
}

beforeAll(async () => {
  s3 = await startS3Server(['blobs']);
  dir = await mkdtemp(join(tmpdir(), 'docbatch-s3blobs-'));
});

afterAll(async () => {
  await s3.close();
  await rm(dir, { recursive: true, force: true });
});

describe('S3BlobStore', () => {
  it('stores blobs under <prefix>/<sha[0:2]>/<sha> with the marker; reads them whole, by range and by local path', async () => {
    const blobs = store();
    const file = join(dir, 'input.bin');
    const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
    await writeFile(file, bytes);
    const a = await blobs.put(file);
    expect(a).toEqual({ sha256: sha(bytes), size: bytes.length, location: `s3://blobs/team/store/${sha(bytes).slice(0, 2)}/${sha(bytes)}` });
    const b = await blobs.putBytes('{"task":1}');
    const tmp = await blobs.tempPath('sidecar');
    await writeFile(tmp, 'line one\nline two\n');
    const c = await blobs.adopt(tmp, sha('line one\nline two\n'));
    await expect(readdir(join(dir, 'cache', 'tmp'))).resolves.not.toContain(tmp.split('/').pop());
    expect(await s3.keys('blobs')).toEqual(
      ['team/store/.docbatch-store', ...[a, b, c].map((r) => `team/store/${r.sha256.slice(0, 2)}/${r.sha256}`)].sort(),
    );
    await expect(blobs.check()).resolves.toBeUndefined();
    expect(await blobs.has(a.sha256)).toBe(true);
    expect(await blobs.has(sha('nothing'))).toBe(false);
    expect((await blobs.readAll(b.sha256)).toString()).toBe('{"task":1}');
    expect((await blobs.read(c.sha256, 9, 8)).toString()).toBe('line two');
    expect(await blobs.read(a.sha256, 65_000, 5000)).toEqual(bytes.subarray(65_000, 70_000));
    const local = await blobs.localPath(a.sha256);
    expect(local.startsWith(join(dir, 'cache', 'blobs'))).toBe(true);
    expect(await readFile(local)).toEqual(bytes);
    // Storing the same content again changes nothing.
    expect(await blobs.put(file)).toEqual(a);
  });

  it('a blob larger than a part goes up as a multipart upload and reads back whole', async () => {
    const blobs = new S3BlobStore({ client: testClient(s3.endpoint), location: { bucket: 'blobs', prefix: 'big' }, cache: new BlobCache({ dir: join(dir, 'cache-big'), maxBytes: 1 << 30 }), partSizeBytes: 5 * 1024 * 1024 });
    const bytes = Buffer.alloc(11 * 1024 * 1024 + 17);
    for (let i = 0; i < bytes.length; i += 4096) bytes.writeUInt32BE(i, i);
    const file = join(dir, 'big.bin');
    await writeFile(file, bytes);
    const ref = await blobs.put(file);
    expect(ref.size).toBe(bytes.length);
    expect((await blobs.readAll(ref.sha256)).equals(bytes)).toBe(true);
    expect((await readFile(await blobs.localPath(ref.sha256))).equals(bytes)).toBe(true);
    expect(await blobs.read(ref.sha256, 10 * 1024 * 1024, 8)).toEqual(bytes.subarray(10 * 1024 * 1024, 10 * 1024 * 1024 + 8));
  });

  it('named objects: written whole, read back, listed by prefix, deleted; a missing one is null', async () => {
    const blobs = store({ prefix: '' });
    await blobs.putNamed(archiveKey('d1', 1), '[0,{"ok":true}]\n');
    await blobs.putNamed(archiveKey('d2', 3), '');
    expect((await blobs.getNamed(archiveKey('d1', 1)))?.toString()).toBe('[0,{"ok":true}]\n');
    expect(await blobs.getNamed(archiveKey('d9', 1))).toBeNull();
    const keys: string[] = [];
    for await (const k of blobs.namedKeys('results/')) keys.push(k);
    expect(keys.sort()).toEqual(['results/d1/1.jsonl', 'results/d2/3.jsonl']);
    expect(await s3.keys('blobs', 'named/')).toEqual(['named/results/d1/1.jsonl', 'named/results/d2/3.jsonl']);
    // A folder marker (consoles, s3fs, rclone) and a key docbatch never writes are not listed:
    // gc deleted what it listed and stopped on them ("not a named-object key").
    await s3.put('blobs', 'named/results/', '');
    await s3.put('blobs', 'named/results/x y/1.jsonl', 'someone else\'s');
    const listed: string[] = [];
    for await (const k of blobs.namedKeys('results/')) listed.push(k);
    expect(listed.sort()).toEqual(['results/d1/1.jsonl', 'results/d2/3.jsonl']);
    await blobs.deleteNamed(archiveKey('d1', 1));
    expect(await blobs.getNamed(archiveKey('d1', 1))).toBeNull();
    await expect(blobs.putNamed('../escape', 'x')).rejects.toThrow(/not a named-object key/);
  });

  it('whose fault: a missing bucket, refused credentials, a store that does not answer → BLOB_STORE_UNAVAILABLE; a missing key → BLOB_MISSING', async () => {
    const noBucket = await rejection(store({ bucket: 'no-such-bucket' }).reach());
    expect(noBucket.code).toBe('BLOB_STORE_UNAVAILABLE');
    expect(noBucket.message).toMatch(/bucket no-such-bucket does not exist/);
    const denied = await rejection(store({ key: 'WRONG' }).reach());
    expect(denied.code).toBe('BLOB_STORE_UNAVAILABLE');
    expect(denied.message).toMatch(/access denied/);
    const gone = await rejection(store({ endpoint: 'http://127.0.0.1:1' }).readAll(sha('x')));
    expect(gone.code).toBe('BLOB_STORE_UNAVAILABLE');
    expect(gone.message).toMatch(/does not answer/);
    const missing = await rejection(store().readAll(sha('never stored')));
    expect(missing.code).toBe('BLOB_MISSING');
    expect((await rejection(store().localPath(sha('never stored')))).code).toBe('BLOB_MISSING');
    expect((await rejection(store({ bucket: 'no-such-bucket' }).read(sha('x'), 0, 1))).code).toBe('BLOB_STORE_UNAVAILABLE');
    // A store without the producers' marker answers, but is not theirs.
    const empty = await rejection(store({ prefix: 'elsewhere' }).check());
    expect(empty.code).toBe('BLOB_STORE_UNAVAILABLE');
    expect(empty.message).toMatch(/has no \.docbatch-store/);
  });

  it('a blob whose bytes do not match its name is refused on download, not handed to a renderer', async () => {
    const blobs = store({ prefix: 'tampered' });
    const real = await blobs.putBytes('the real content');
    await s3.client.send(new PutObjectCommand({ Bucket: 'blobs', Key: `tampered/${real.sha256.slice(0, 2)}/${real.sha256}`, Body: 'something else' }));
    const err = await rejection(store({ prefix: 'tampered' }).localPath(real.sha256));
    expect(err.code).toBe('BLOB_MISSING');
    expect(err.message).toMatch(/does not hold what its name says/);
  });

  it('gc lists and deletes on S3: unused blobs past the retention and archives of gone documents go, live ones stay', async () => {
    const prefix = uniquePrefix(import.meta.filename);
    const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    try {
      const blobs = store({ prefix: 'gc' });
      const kept = await blobs.putBytes('used by a live document');
      const dropped = await blobs.putBytes('used by nobody');
      await blobs.putNamed(archiveKey('dgone', 1), 'x\n');
      const docs = new DocStore(redis, prefix);
      await redis.zadd(docs.docsKey, Date.now(), 'dlive');
      await redis.hset(docs.docKey('dlive'), 'meta', JSON.stringify({ blob: kept.sha256 }));
      await blobs.putNamed(archiveKey('dlive', 1), 'y\n');
      const report = await collect(
        { store: docs, blobs, feeder: new Feeder(redis, prefix, () => { throw new Error('no queue here'); }), log: silentLogger() },
        { retentionMs: 1000, now: Date.now() + 60_000 },
      );
      expect(report.blobs).toBe(1);
      expect(report.archives).toBe(1);
      const left = await s3.keys('blobs', 'gc/');
      expect(left).toContain(`gc/${kept.sha256.slice(0, 2)}/${kept.sha256}`);
      expect(left).not.toContain(`gc/${dropped.sha256.slice(0, 2)}/${dropped.sha256}`);
      expect(left).toContain('gc/named/results/dlive/1.jsonl');
      expect(left).not.toContain('gc/named/results/dgone/1.jsonl');
    } finally {
      redis.disconnect();
      await deletePrefix(prefix);
    }
  });
});
