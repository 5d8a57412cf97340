/**
 * The start checks (worker: BLOB_DIR; writer and enqueue: BLOB_DIR and OUT_DIR) under the usual
 * policy for a shared bucket: s3:ListBucket granted only under docbatch's prefix (a Condition on
 * `s3:prefix`), s3:GetObject/PutObject on the keys under it. AWS authorizes HeadBucket as
 * s3:ListBucket with no prefix, so the HEAD is refused (403) while every request docbatch makes
 * under its prefix is allowed (percona/percona-xtrabackup#1717 describes the same wall). The
 * worker refused to start (WORKER_UNFIT: access denied) and the writer stopped. Now a refused
 * HeadBucket is followed by a listing of one key under the prefix; only when that is refused too
 * does the check fail, with the HEAD's reason. A real HTTP peer refusing as AWS does
 * (test/helpers/s3-literal.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DocbatchError } from '../../src/errors.ts';
import { BlobCache } from '../../src/store/blob-cache.ts';
import { S3BlobStore } from '../../src/store/blobs-s3.ts';
import { createS3Client } from '../../src/store/s3.ts';
import { S3Sink } from '../../src/write/sink-s3.ts';
import { startLiteralS3, type LiteralS3 } from '../helpers/s3-literal.ts';

let s3: LiteralS3;
let dir: string;

beforeAll(async () => {
  s3 = await startLiteralS3();
  s3.put('shared', 'docbatch/blobs/.docbatch-store', 'docbatch blob store\n');
  s3.put('shared', 'someone-else/x', 'x');
  dir = await mkdtemp(join(tmpdir(), 'docbatch-s3reach-'));
  // s3:ListBucket only with s3:prefix under docbatch/: HeadBucket (no prefix) and other listings are 403.
  s3.intercept = (req, res, { key }) => {
    if (key !== null) return false;
    const prefix = new URL(req.url ?? '/', 'http://x').searchParams.get('prefix');
    if (req.method === 'GET' && prefix?.startsWith('docbatch/')) return false;
    res.writeHead(403, { 'Content-Type': 'application/xml' });
    res.end(req.method === 'HEAD' ? undefined : '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
    return true;
  };
});
afterAll(async () => {
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

const client = () => createS3Client({ forcePathStyle: true, maxAttempts: 1 }, { endpoint: s3.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
const blobs = (prefix: string) => new S3BlobStore({ client: client(), location: { bucket: 'shared', prefix }, cache: new BlobCache({ dir: join(dir, 'cache'), maxBytes: 1 << 20 }) });

describe('ListBucket granted under a prefix only', () => {
  it('BLOB_DIR and OUT_DIR under that prefix pass the start checks', async () => {
    await blobs('docbatch/blobs').reach();
    await blobs('docbatch/blobs').check();
    await new S3Sink(client(), { bucket: 'shared', prefix: 'docbatch/out' }).reach();
    // It asked for the bucket first, then listed one key under the prefix.
    const asked = s3.requests.slice(0, 2).map((r) => `${r.method} ${r.url}`);
    expect(asked[0]).toBe('HEAD /shared/');
    expect(asked[1]).toMatch(/^GET \/shared\/\?list-type=2&max-keys=1&prefix=docbatch%2Fblobs%2F$/);
  });

  it('outside the grant the check still fails, with access denied', async () => {
    const err = (await blobs('someone-else').reach().catch((e: unknown) => e)) as DocbatchError;
    expect(err.code).toBe('BLOB_STORE_UNAVAILABLE');
    expect(err.message).toMatch(/^BLOB_DIR s3:\/\/shared\/someone-else: access denied: /);
    const out = (await new S3Sink(client(), { bucket: 'shared', prefix: 'someone-else' }).reach().catch((e: unknown) => e)) as DocbatchError;
    expect(out.code).toBe('WRITE_FAILED');
    expect(out.message).toMatch(/^OUT_DIR s3:\/\/shared\/someone-else: access denied: /);
  });
});
