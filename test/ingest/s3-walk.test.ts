/**
 * Walking `s3://bucket/in` (no trailing `/`) under the IAM policy most buckets are shared with:
 * s3:ListBucket on the bucket, s3:GetObject on `in/*`. AWS answers the HEAD of the key `in`
 * itself with 403: a HEAD needs s3:GetObject on its key (AWS, *HeadObject*: "To use HEAD, you
 * must have the s3:GetObject permission"; and without s3:ListBucket a key that is not there is
 * 403, not 404). The walk took that 403 for the answer and rejected the input as access
 * denied, though every object under `in/` could be listed and read. Now a denied HEAD goes on to
 * the listing; only when that finds nothing is the input rejected (with the HEAD's reason).
 * A real HTTP peer (test/helpers/s3-literal.ts) refusing as AWS does.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findDocuments } from '../../src/ingest/retry.ts';
import type { DocbatchError } from '../../src/errors.ts';
import { S3Input, walkS3 } from '../../src/ingest/s3-input.ts';
import { LocalBlobStore } from '../../src/store/blobs-local.ts';
import { DocStore } from '../../src/store/docs.ts';
import { createS3Client } from '../../src/store/s3.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { startLiteralS3, type LiteralS3 } from '../helpers/s3-literal.ts';

let s3: LiteralS3;

beforeAll(async () => {
  s3 = await startLiteralS3();
  for (const key of ['in/a.pdf', 'in/b/c.json', 'other/x.pdf']) s3.put('bkt', key, 'x');
  // GetObject granted on in/* only: a HEAD or GET of any other key is 403 (a HEAD has no body).
  s3.intercept = (req, res, { key }) => {
    if (key === null || key.startsWith('in/') || (req.method !== 'HEAD' && req.method !== 'GET')) return false;
    res.writeHead(403, { 'Content-Type': 'application/xml' });
    res.end(req.method === 'HEAD' ? undefined : '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
    return true;
  };
});
const prefix = uniquePrefix(import.meta.filename);
afterAll(async () => {
  await s3?.close();
  await deletePrefix(prefix);
});

async function walk(input: string): Promise<string[]> {
  const client = createS3Client({ forcePathStyle: true, maxAttempts: 1 }, { endpoint: s3.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
  const out: string[] = [];
  for await (const o of walkS3(input, client, null)) out.push(`${o.path}${o.explicit ? ' (as named)' : ''}`);
  client.destroy();
  return out;
}

describe('a prefix named without its trailing slash, the HEAD of its own key denied', () => {
  it('the objects under it are walked', async () => {
    expect(await walk('s3://bkt/in')).toEqual(['s3://bkt/in/a.pdf', 's3://bkt/in/b/c.json']);
  });

  it('nothing under it: the input as named, to be rejected with the HEAD\'s reason', async () => {
    expect(await walk('s3://bkt/nothing')).toEqual(['s3://bkt/nothing (as named)']);
    // That reason says what a 403 to a HEAD may also mean: the key is not there (AWS, HeadObject).
    const client = createS3Client({ forcePathStyle: true, maxAttempts: 1 }, { endpoint: s3.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
    const err = (await S3Input.open('s3://bkt/nothing', client, new LocalBlobStore(join(tmpdir(), 'docbatch-s3walk-unused'))).catch((e: unknown) => e)) as DocbatchError;
    client.destroy();
    expect(err.describe()).toMatch(/^s3:\/\/bkt\/nothing: FILE_UNREADABLE: access denied: .*; or the object does not exist \(without s3:ListBucket, AWS answers 403 for a missing key\) \(Unknown 403\)$/);
  });
});

describe('`docbatch retry s3://...` of an object it may not read', () => {
  // It hashed the object to find its documents and took any failure for "not there": access
  // denied (or a wrong region, or no answer) was reported as DOC_NOT_FOUND.
  it('denied: FILE_UNREADABLE with the reason, in its place; missing: no document', async () => {
    const redis = new Redis(TEST_REDIS_URL);
    const client = createS3Client({ forcePathStyle: true, maxAttempts: 1 }, { endpoint: s3.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
    try {
      const store = new DocStore(redis, prefix);
      const err = (await findDocuments(store, 's3://bkt/other/x.pdf', () => client).catch((e: unknown) => e)) as DocbatchError;
      expect(err.code).toBe('FILE_UNREADABLE');
      expect(err.describe()).toMatch(/^s3:\/\/bkt\/other\/x\.pdf: FILE_UNREADABLE: access denied: /);
      expect(await findDocuments(store, 's3://bkt/in/none.pdf', () => client)).toEqual([]);
    } finally {
      redis.disconnect();
      client.destroy();
    }
  });
});
