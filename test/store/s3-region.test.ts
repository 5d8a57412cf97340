/**
 * A bucket in another region than AWS_REGION, as AWS answers it. To a HEAD (HeadBucket at the
 * start of a worker, the writer and enqueue; HeadObject of every input) AWS has no body to say
 * why: a bare `400 Bad Request` with the bucket's region in `x-amz-bucket-region` (AWS's
 * HeadBucket reference; seen in the field in boto/botocore#1413 and aws/aws-sdk-ruby#1162); to a
 * GET, 400 AuthorizationHeaderMalformed "the region 'us-east-1' is wrong; expecting 'eu-west-3'"
 * (hashicorp/vault#2892). docbatch said only "OUT_DIR s3://b/out: Unknown 400". The start checks
 * now ask a listing why and say the region to set; an input's HEAD says the region as the likely
 * cause. A bare 400 for another reason (expired credentials, the region right) is not called a
 * region problem. A real HTTP peer answering so (test/helpers/s3-literal.ts), the SDK in front.
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
/** Why every request is refused: the bucket lives in eu-west-3, or the session token expired. */
let why: 'region' | 'expired' = 'region';

beforeAll(async () => {
  s3 = await startLiteralS3();
  s3.put('bkt', 'in/x.pdf', '%PDF-1.4');
  dir = await mkdtemp(join(tmpdir(), 'docbatch-s3region-'));
  s3.intercept = (req, res) => {
    const region = why === 'region' ? 'eu-west-3' : 'us-east-1';
    const body =
      why === 'region'
        ? "<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-3'</Message><Region>eu-west-3</Region></Error>"
        : '<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message></Error>';
    res.writeHead(400, { 'x-amz-bucket-region': region, 'Content-Type': 'application/xml' });
    res.end(req.method === 'HEAD' ? undefined : `<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
    return true;
  };
});
afterAll(async () => {
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

const client = () => createS3Client({ forcePathStyle: true, maxAttempts: 1 }, { endpoint: s3.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
const blobs = () => new S3BlobStore({ client: client(), location: { bucket: 'bkt', prefix: 'blobs' }, cache: new BlobCache({ dir: join(dir, 'cache'), maxBytes: 1 << 20 }) });

async function starts(): Promise<string[]> {
  const stored = (await blobs().reach().catch((e: unknown) => e)) as DocbatchError;
  const written = (await new S3Sink(client(), { bucket: 'bkt', prefix: 'out' }).reach().catch((e: unknown) => e)) as DocbatchError;
  return [`${stored.code}: ${stored.message}`, `${written.code}: ${written.message}`];
}

describe('a bucket in another region, said to a HEAD', () => {
  it('at start (HeadBucket): BLOB_DIR and OUT_DIR say which region to set', async () => {
    why = 'region';
    const because = "(AuthorizationHeaderMalformed 400: The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-3')";
    expect(await starts()).toEqual([
      `BLOB_STORE_UNAVAILABLE: BLOB_DIR s3://bkt/blobs: the bucket is in another region (eu-west-3): set AWS_REGION=eu-west-3 ${because}`,
      `WRITE_FAILED: OUT_DIR s3://bkt/out: the bucket is in another region (eu-west-3): set AWS_REGION=eu-west-3 ${because}`,
    ]);
  });

  it('an input (HeadObject): FILE_UNREADABLE naming the region as the likely cause, in its place', async () => {
    why = 'region';
    const err = (await S3Input.open('s3://bkt/in/x.pdf', client(), new LocalBlobStore(join(dir, 'local'))).catch((e: unknown) => e)) as DocbatchError;
    expect(err.code).toBe('FILE_UNREADABLE');
    expect(err.describe()).toBe('s3://bkt/in/x.pdf: FILE_UNREADABLE: the store refused the request without saying why (a HEAD has no body); the bucket is in eu-west-3: set AWS_REGION=eu-west-3 unless it is that already (then check the credentials: expired?) (Unknown 400)');
  });

  it('a bare 400 for another reason (expired credentials) is said as that, not as a region', async () => {
    why = 'expired';
    const [stored, written] = await starts();
    expect(stored).toMatch(/^BLOB_STORE_UNAVAILABLE: BLOB_DIR s3:\/\/bkt\/blobs: access denied: .*\(ExpiredToken 400: The provided token has expired\.\)$/);
    expect(written).toMatch(/^WRITE_FAILED: OUT_DIR s3:\/\/bkt\/out: access denied: .*\(ExpiredToken 400: The provided token has expired\.\)$/);
  });
});

describe('a store that redirects without naming the region', () => {
  // Stores other than AWS (Wasabi, multi-zone Ceph) answer a bucket of another region with 301
  // PermanentRedirect naming only the <Endpoint> (AWS's error reference lists it with the code),
  // no x-amz-bucket-region; with a custom AWS_ENDPOINT_URL, setting AWS_REGION alone changes nothing.
  it('says the endpoint the store names', async () => {
    const store = await startLiteralS3();
    store.intercept = (req, res) => {
      const body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.</Message><Endpoint>bkt.s3.eu-central-2.wasabisys.com</Endpoint><Bucket>bkt</Bucket></Error>';
      res.writeHead(301, { 'Content-Type': 'application/xml', 'Content-Length': req.method === 'HEAD' ? 0 : Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return true;
    };
    try {
      const c = createS3Client({ forcePathStyle: true, maxAttempts: 1 }, { endpoint: store.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
      const err = (await new S3Sink(c, { bucket: 'bkt', prefix: 'out' }).writeWhole('a.md', 'x').catch((e: unknown) => e)) as DocbatchError;
      expect(err.code).toBe('WRITE_FAILED');
      expect(err.message).toMatch(/^cannot write s3:\/\/bkt\/out\/a\.md: the bucket is in another region: set AWS_REGION to the region of the bucket, and AWS_ENDPOINT_URL to that region's endpoint \(the store names bkt\.s3\.eu-central-2\.wasabisys\.com\) \(PermanentRedirect 301: /);
    } finally {
      await store.close();
    }
  });
});
