/**
 * Reads and writes on S3 ride out throttling and 5xx: the client docbatch makes
 * (createS3Client: the SDK's standard retry strategy, S3_MAX_ATTEMPTS attempts with backoff and
 * jitter) in front of a real S3-protocol server, through a proxy that answers chosen requests with
 * 503 SlowDown, 429, 500 or 503. Within the attempts the operation succeeds with the right bytes;
 * past them it fails with the store's code, not silently.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DocbatchError } from '../../src/errors.ts';
import { BlobCache } from '../../src/store/blob-cache.ts';
import { S3BlobStore } from '../../src/store/blobs-s3.ts';
import { createS3Client } from '../../src/store/s3.ts';
import { S3Sink } from '../../src/write/sink-s3.ts';
import { flakyProxy, S3_KEY, startS3Server, type FlakyProxy, type S3Server } from '../helpers/s3.ts';

let s3: S3Server;
let proxy: FlakyProxy;
let dir: string;

beforeAll(async () => {
  s3 = await startS3Server(['data']);
  proxy = await flakyProxy(s3.endpoint);
  dir = await mkdtemp(join(tmpdir(), 'docbatch-s3retry-'));
});
afterAll(async () => {
  await proxy.close();
  await s3.close();
  await rm(dir, { recursive: true, force: true });
});

function client(maxAttempts: number, timeoutMs?: number) {
  return createS3Client({ forcePathStyle: true, maxAttempts, ...(timeoutMs ? { timeoutMs } : {}) }, { endpoint: proxy.endpoint, region: 'us-east-1', credentials: { accessKeyId: S3_KEY, secretAccessKey: S3_KEY } });
}

function blobs(maxAttempts: number, cache = 'cache') {
  return new S3BlobStore({ client: client(maxAttempts), location: { bucket: 'data', prefix: 'blobs' }, cache: new BlobCache({ dir: join(dir, cache), maxBytes: 1 << 20 }) });
}

describe('retries on throttling and 5xx', () => {
  it('writes: a blob and an output go in despite SlowDown, 429 and 500 answers', async () => {
    const store = blobs(5);
    await store.markStore();
    const faulted = proxy.stats().faulted;
    proxy.failNext([{ status: 503, code: 'SlowDown' }, { status: 500, code: 'InternalError' }], 'PUT');
    const ref = await store.putBytes('a chunk index');
    expect(proxy.stats().faulted - faulted).toBe(2);
    expect((await s3.get('data', `blobs/${ref.sha256.slice(0, 2)}/${ref.sha256}`))?.toString()).toBe('a chunk index');

    proxy.failNext([{ status: 429, code: 'TooManyRequests' }, { status: 503, code: 'ServiceUnavailable' }], 'PUT');
    const location = await new S3Sink(client(5), { bucket: 'data', prefix: 'out' }).writeWhole('doc.md', '<!-- page 1 -->\ntext\n');
    expect(proxy.stats().faulted - faulted).toBe(4);
    expect(location).toBe('s3://data/out/doc.md');
    expect((await s3.get('data', 'out/doc.md'))?.toString()).toBe('<!-- page 1 -->\ntext\n');
  });

  it('reads: whole, ranged and cached reads come back right despite SlowDown and 503 answers', async () => {
    const store = blobs(5);
    const ref = await store.putBytes('0123456789abcdef');
    const faulted = proxy.stats().faulted;
    proxy.failNext([{ status: 503, code: 'SlowDown' }, { status: 503, code: 'SlowDown' }], 'GET');
    expect((await store.read(ref.sha256, 10, 6)).toString()).toBe('abcdef');
    proxy.failNext([{ status: 500, code: 'InternalError' }], 'GET');
    expect((await store.readAll(ref.sha256)).toString()).toBe('0123456789abcdef');
    proxy.failNext([{ status: 503, code: 'SlowDown' }], 'GET');
    expect(await store.localPath(ref.sha256)).toMatch(/cache\/blobs\/[0-9a-f]{64}$/);
    expect(proxy.stats().faulted - faulted).toBe(4);
  });

  it('past S3_MAX_ATTEMPTS the fault is reported with the store code, after exactly that many tries', async () => {
    const store = blobs(2);
    const ref = await store.putBytes('short-lived');
    const before = proxy.stats();
    proxy.failNext([{ status: 503, code: 'SlowDown' }, { status: 503, code: 'SlowDown' }, { status: 503, code: 'SlowDown' }], 'GET');
    const err = await store.readAll(ref.sha256).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DocbatchError);
    expect((err as DocbatchError).code).toBe('BLOB_STORE_UNAVAILABLE');
    expect((err as Error).message).toMatch(/SlowDown/);
    const after = proxy.stats();
    expect((after.requests.GET ?? 0) - (before.requests.GET ?? 0)).toBe(2);
    // The third fault is still queued: the next read meets it once and retries past it.
    expect((await store.readAll(ref.sha256)).toString()).toBe('short-lived');
  });
});

describe('bodies cut off, blobs shown late, stores that do not answer', () => {
  it('a blob download cut off mid-body is fetched again and checked afresh (it failed as damaged)', async () => {
    const store = blobs(5, 'cache-cut');
    const bytes = Buffer.from(Array.from({ length: 40_000 }, (_, i) => i % 251));
    const ref = await store.putBytes(bytes);
    proxy.failNext([{ cutAfterBytes: 1000 }], 'GET');
    const path = await store.localPath(ref.sha256);
    expect((await readFile(path)).equals(bytes)).toBe(true);
  });

  it('a blob the store shows a little late (eventual consistency) is waited for, not failed at once', async () => {
    const store = blobs(1, 'cache-late');
    const ref = await store.putBytes('stored, shown late');
    proxy.failNext([{ status: 404, code: 'NoSuchKey' }, { status: 404, code: 'NoSuchKey' }], 'GET');
    expect((await store.readAll(ref.sha256)).toString()).toBe('stored, shown late');
  });

  it('an abort ends the wait for a blob not shown yet at once (ABORTED), and stops asking for it', async () => {
    const store = blobs(1, 'cache-abort');
    const missing = createHash('sha256').update('never stored').digest('hex');
    const key = `/data/blobs/${missing.slice(0, 2)}/${missing}`;
    const reads: Array<[string, (signal: AbortSignal) => Promise<unknown>]> = [
      ['readAll', (signal) => store.readAll(missing, { signal })],
      ['read', (signal) => store.read(missing, 0, 4, { signal })],
      ['localPath', (signal) => store.localPath(missing, { signal })],
    ];
    for (const [name, read] of reads) {
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('shutdown')), 400); // inside the second wait (250 ms, then 1 s)
      const started = performance.now();
      const err = await read(ac.signal).catch((e: unknown) => e);
      const gets = () => proxy.seen().filter((r) => r.method === 'GET' && r.url.startsWith(key)).length;
      const asked = gets();
      expect([name, (err as DocbatchError).code]).toEqual([name, 'ABORTED']);
      expect(performance.now() - started, name).toBeLessThan(1000);
      // Nothing goes on asking for it once nobody waits (the cache's download included).
      await new Promise((r) => setTimeout(r, 1500));
      expect([name, gets()]).toEqual([name, asked]);
    }
    // An abort already made: not one request.
    const before = proxy.stats().requests.GET ?? 0;
    await expect(store.readAll(missing, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(proxy.stats().requests.GET ?? 0).toBe(before);
  }, 30_000);

  it('one of two waiting for the same download leaves: the other still gets the blob', async () => {
    const store = blobs(1, 'cache-two');
    const ref = await store.putBytes('shown late, wanted twice');
    proxy.failNext([{ status: 404, code: 'NoSuchKey' }, { status: 404, code: 'NoSuchKey' }], 'GET');
    const ac = new AbortController();
    const leaving = store.localPath(ref.sha256, { signal: ac.signal });
    const staying = store.localPath(ref.sha256);
    setTimeout(() => ac.abort(new Error('this job was cancelled')), 100);
    await expect(leaving).rejects.toMatchObject({ code: 'ABORTED' });
    expect((await readFile(await staying)).toString()).toBe('shown late, wanted twice');
  });

  it('a store that takes a request and never answers is a timeout, retried, then an error: not a hang', async () => {
    const slow = new S3BlobStore({ client: client(2, 500), location: { bucket: 'data', prefix: 'blobs' }, cache: new BlobCache({ dir: join(dir, 'cache-stall'), maxBytes: 1 << 20 }) });
    const ref = await blobs(5).putBytes('never answered');
    proxy.failNext([{ stall: true }, { stall: true }], 'GET');
    const started = performance.now();
    const err = await slow.readAll(ref.sha256).catch((e: unknown) => e);
    expect((err as DocbatchError).code).toBe('BLOB_STORE_UNAVAILABLE');
    expect(performance.now() - started).toBeLessThan(15_000);
  }, 30_000);
});
