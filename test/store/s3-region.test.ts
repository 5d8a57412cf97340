/**
 * A bucket in another region than AWS_REGION, as AWS answers it. To a HEAD (HeadBucket at the
 * start of a worker, the writer and enqueue; HeadObject of every input) AWS has no body to say
 * why: a bare `400 Bad Request` with the bucket's region in `x-amz-bucket-region` (AWS's
 * HeadBucket reference: "x-amz-bucket-region ... returned in error responses"; seen in the
 * field in boto/botocore#1413 and aws/aws-sdk-ruby#1162). docbatch said only
 * "OUT_DIR s3://b/out: Unknown 400". It now names the region to set, as it did for a 301.
 * A real HTTP peer answering those headers (test/helpers/s3-literal.ts), the SDK client in front.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DocbatchError } from '../../src/errors.ts';
import { S3Input } from '../../src/ingest/s3-input.ts';
import { BlobCache } from '../../src/store/blob-cache.ts';
import { LocalBlobStore } from '../../src/store/blobs-local.ts';
import { S3BlobStore } from '../../src/store/blobs-s3.ts';
import { createS3Client } from '../../src/store/s3.ts';
import { S3Sink } from '../../src/write/sink-s3.ts';
import { startLiteralS3, type LiteralS3 } from '../helpers/s3-literal.ts';

let s3: LiteralS3;
let dir: string;

beforeAll(async () => {
  s3 = await startLiteralS3();
  s3.put('bkt', 'in/x.pdf', '%PDF-1.4');
  dir = await mkdtemp(join(tmpdir(), 'docbatch-s3region-'));
  // Every HEAD: the bucket is in eu-west-3, the client signs for us-east-1.
  s3.intercept = (req, res) => {
    if (req.method !== 'HEAD') return false;
    res.writeHead(400, { 'x-amz-bucket-region': 'eu-west-3', 'x-amz-request-id': 'R', 'Content-Type': 'application/xml' });
    res.end();
    return true;
  };
});
afterAll(async () => {
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

const client = () => createS3Client({ forcePathStyle: true, maxAttempts: 1 }, { endpoint: s3.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });

describe('a bucket in another region, said to a HEAD', () => {
  it('at start (HeadBucket): BLOB_DIR and OUT_DIR say which region to set', async () => {
    const blobs = new S3BlobStore({ client: client(), location: { bucket: 'b', prefix: 'blobs' }, cache: new BlobCache({ dir: join(dir, 'cache'), maxBytes: 1 << 20 }) });
    const stored = (await blobs.reach().catch((e: unknown) => e)) as DocbatchError;
    expect([stored.code, stored.message]).toEqual(['BLOB_STORE_UNAVAILABLE', 'BLOB_DIR s3://b/blobs: the bucket is in another region (eu-west-3): set AWS_REGION=eu-west-3 (Unknown 400)']);
    const written = (await new S3Sink(client(), { bucket: 'b', prefix: 'out' }).reach().catch((e: unknown) => e)) as DocbatchError;
    expect([written.code, written.message]).toEqual(['WRITE_FAILED', 'OUT_DIR s3://b/out: the bucket is in another region (eu-west-3): set AWS_REGION=eu-west-3 (Unknown 400)']);
  });

  it('an input (HeadObject): FILE_UNREADABLE naming the region, in its place', async () => {
    const err = (await S3Input.open('s3://bkt/in/x.pdf', client(), new LocalBlobStore(join(dir, 'local'))).catch((e: unknown) => e)) as DocbatchError;
    expect(err.code).toBe('FILE_UNREADABLE');
    expect(err.describe()).toBe('s3://bkt/in/x.pdf: FILE_UNREADABLE: the bucket is in another region (eu-west-3): set AWS_REGION=eu-west-3 (Unknown 400)');
  });
});
