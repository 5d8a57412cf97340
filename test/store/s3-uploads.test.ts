/**
 * Uploads to a store that never answers `Expect: 100-continue` (R2: "Cloudflare does not support
 * the HTTP 100 response", R2's S3 API extensions page). The AWS SDK adds that header to every
 * body of 2 MiB or more (its `expectContinueHeader` default) and then waits for the 100 up to
 * 6 s before sending the body: each blob of a PDF above 2 MiB, each results archive and each
 * output part paid 6 s on R2. The client docbatch makes sends no Expect header. A real HTTP peer
 * that reads the body when it comes and never sends 100 (test/helpers/s3-literal.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobCache } from '../../src/store/blob-cache.ts';
import { S3BlobStore } from '../../src/store/blobs-s3.ts';
import { createS3Client } from '../../src/store/s3.ts';
import { S3Sink } from '../../src/write/sink-s3.ts';
import { startLiteralS3, type LiteralS3 } from '../helpers/s3-literal.ts';

let s3: LiteralS3;
let dir: string;
const expects: string[] = [];
const puts: Array<Record<string, string | string[] | undefined>> = [];

beforeAll(async () => {
  s3 = await startLiteralS3({
    noContinue: true,
    onRequest: (req) => {
      if (req.headers.expect) expects.push(req.headers.expect);
      if (req.method === 'PUT') puts.push(req.headers);
    },
  });
  s3.put('bkt', 'blobs/.docbatch-store', 'docbatch blob store\n');
  dir = await mkdtemp(join(tmpdir(), 'docbatch-s3uploads-'));
});
afterAll(async () => {
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

const client = () => createS3Client({ forcePathStyle: true, maxAttempts: 1 }, { endpoint: s3.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });

describe('a store that never sends 100 Continue', () => {
  it('a 3 MiB blob and a 3 MiB output go up at once, not after a 6 s wait each', async () => {
    const bytes = Buffer.alloc(3 * 1024 * 1024, 7);
    const store = new S3BlobStore({ client: client(), location: { bucket: 'bkt', prefix: 'blobs' }, cache: new BlobCache({ dir: join(dir, 'cache'), maxBytes: 1 << 20 }) });
    let started = performance.now();
    const ref = await store.putBytes(bytes);
    const blobMs = performance.now() - started;
    expect(s3.buckets.get('bkt')!.get(`blobs/${ref.sha256.slice(0, 2)}/${ref.sha256}`)!.body.equals(bytes)).toBe(true);
    started = performance.now();
    await new S3Sink(client(), { bucket: 'bkt', prefix: 'out' }).writeWhole('big.md', bytes);
    const outputMs = performance.now() - started;
    expect(s3.buckets.get('bkt')!.get('out/big.md')!.body.length).toBe(bytes.length);
    expect(expects).toEqual([]);
    expect(blobMs).toBeLessThan(3000);
    expect(outputMs).toBeLessThan(3000);
  }, 30_000);
});

describe('what an upload carries', () => {
  // The SDK's default since 2025 (requestChecksumCalculation WHEN_SUPPORTED) adds CRC32 checksum
  // headers, or sends streams aws-chunked with a trailing checksum: GCS's interoperability, B2 and
  // older MinIO and Ceph refuse those or store the framing. docbatch's client sends plain bodies.
  it('a blob, an output and a streamed output: a plain body with its length, no checksum headers, no aws-chunked', async () => {
    puts.length = 0;
    const store = new S3BlobStore({ client: client(), location: { bucket: 'bkt', prefix: 'blobs' }, cache: new BlobCache({ dir: join(dir, 'cache2'), maxBytes: 1 << 20 }) });
    await store.putBytes('a small blob');
    const sink = new S3Sink(client(), { bucket: 'bkt', prefix: 'out' });
    await sink.writeWhole('a.md', 'text\n');
    await sink.writeStream('b.jsonl', async (write) => write('{"a":1}\n'));
    expect(puts.length).toBe(3);
    for (const h of puts) {
      expect(Object.keys(h).filter((k) => /checksum|decoded-content-length|trailer/.test(k))).toEqual([]);
      expect(h['x-amz-content-sha256']).not.toMatch(/^STREAMING-/);
      expect(h['content-encoding'] ?? '').not.toMatch(/aws-chunked/);
      expect(h['content-length']).toMatch(/^\d+$/);
    }
    expect(s3.buckets.get('bkt')!.get('out/b.jsonl')!.body.toString()).toBe('{"a":1}\n');
  });
});
