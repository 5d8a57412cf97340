/**
 * Inputs on s3:// as stores other than AWS serve them, over real HTTP (test/helpers/s3-literal.ts,
 * with the answers of the store scripted in `intercept`):
 *
 * - ETags written differently for one version: the HEAD's `"9b2c…"` and the GET's `9B2C…`
 *   (unquoted, capitals) or `W/"9b2c…"` (weak: what a proxy in front of the store that transforms
 *   bodies writes, nginx's gzip for one). The input was FILE_CHANGED ("its ETag was "…", now …")
 *   though nothing changed: ETags were compared verbatim. A weak ETag sent back in If-Match never
 *   matches (If-Match compares strongly: RFC 9110 13.1.1): it is sent strong.
 *   The same for a results archive resumed after its body was cut off (S3BlobStore.openNamed).
 * - GCS decompressive transcoding: an object stored gzip-compressed with `Content-Encoding: gzip`
 *   is served decompressed to a GET without `Accept-Encoding: gzip`, with no Content-Length, and a
 *   Range ignored (https://cloud.google.com/storage/docs/transcoding), while its HEAD says the
 *   stored (compressed) length. No size check refuses it: the PDF goes in whole, its blob holds
 *   the decompressed bytes (BLOB_DIR a folder or s3://; the upload's Content-Length is the body's;
 *   a guard: this passed before any change here). But that compressed length was taken for the
 *   size of what is read: a 6.7 MB PDF gzipped to 60 kB went to an s3:// BLOB_DIR as one PUT
 *   held whole in memory, past S3_PART_SIZE_MB (a part at most is held). Now an object with a
 *   Content-Encoding is measured, and a downloaded copy's size is what was read.
 * - A bucket with S3 Object Lock refusing uploads without a checksum (below).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { DocbatchError } from '../../src/errors.ts';
import { enqueueFiles } from '../../src/ingest/batch.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { BlobCache } from '../../src/store/blob-cache.ts';
import { S3BlobStore } from '../../src/store/blobs-s3.ts';
import { createS3Client } from '../../src/store/s3.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { useS3Env } from '../helpers/s3.ts';
import { startLiteralS3, type LiteralS3 } from '../helpers/s3-literal.ts';

let s3: LiteralS3;
let dir: string;
let restoreEnv: () => void;
const prefixes: string[] = [];

beforeAll(async () => {
  s3 = await startLiteralS3();
  restoreEnv = useS3Env({ AWS_ENDPOINT_URL: s3.endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', S3_FORCE_PATH_STYLE: 'true' });
  dir = await mkdtemp(join(tmpdir(), 'docbatch-s3edges-'));
  s3.put('store', 'blobs/.keep', '');
});
afterAll(async () => {
  restoreEnv?.();
  await s3?.close();
  for (const p of prefixes) await deletePrefix(p);
  await rm(dir, { recursive: true, force: true });
});

function config(overrides: Partial<Config> = {}): Config {
  const prefix = uniquePrefix(import.meta.filename);
  prefixes.push(prefix);
  return { ...loadConfig({}, {}), redisUrl: TEST_REDIS_URL, prefix, outDir: join(dir, 'out'), blobDir: join(dir, `blobs-${prefix}`), cacheDir: join(dir, `cache-${prefix}`), s3ForcePathStyle: true, s3MaxAttempts: 1, logLevel: 'silent', ...overrides };
}

/** Answers a GET of `key` itself (If-Match against the stored ETag, Range honoured), with the ETag header `shown`. */
function answerGet(req: IncomingMessage, res: ServerResponse, body: Buffer, stored: string, shown: string): void {
  const ifMatch = req.headers['if-match'];
  if (ifMatch !== undefined && ifMatch !== stored) {
    res.writeHead(412, { 'Content-Type': 'application/xml' });
    res.end('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>');
    return;
  }
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  let part = body;
  const headers: Record<string, string | number> = { ETag: shown, 'Content-Type': 'application/pdf' };
  if (range) {
    const start = Number(range[1]);
    const end = Math.min(range[2] ? Number(range[2]) : body.length - 1, body.length - 1);
    part = body.subarray(start, end + 1);
    headers['Content-Range'] = `bytes ${start}-${end}/${body.length}`;
  }
  headers['Content-Length'] = part.length;
  res.writeHead(range ? 206 : 200, headers);
  res.end(part);
}

describe('ETags of one version written differently', () => {
  const variants: Array<[string, (hex: string) => string]> = [
    ['unquoted, in capitals', (hex) => hex.toUpperCase()],
    ['weak (a proxy that transforms bodies)', (hex) => `W/"${hex}"`],
  ];
  for (const [what, shown] of variants) {
    it(`HEAD "hex", GET ${what}: the same version, enqueued`, async () => {
      const key = `etag/${what.replace(/\W+/g, '-')}.pdf`;
      const pdf = numberedPdf(3, 30 + variants.findIndex(([w]) => w === what));
      const hex = createHash('md5').update(pdf).digest('hex');
      s3.put('inputs', key, pdf);
      s3.intercept = (req, res, target) => {
        if (target.key !== key || req.method !== 'GET') return false;
        answerGet(req, res, pdf, `"${hex}"`, shown(hex));
        return true;
      };
      try {
        const [o] = await enqueueFiles([`s3://inputs/${key}`], config(), silentLogger());
        expect(o!.error?.describe()).toBeUndefined();
        expect(o!.runs![0]!.units).toBe(3);
      } finally {
        s3.intercept = null;
      }
    });
  }

  it('the HEAD weak, the store strict: If-Match goes strong, and matches', async () => {
    const key = 'etag/weak-head.pdf';
    const pdf = numberedPdf(2, 41);
    const hex = createHash('md5').update(pdf).digest('hex');
    s3.put('inputs', key, pdf);
    const ifMatch: Array<string | undefined> = [];
    s3.intercept = (req, res, target) => {
      if (target.key !== key) return false;
      if (req.method === 'HEAD') {
        res.writeHead(200, { ETag: `W/"${hex}"`, 'Content-Length': pdf.length, 'Content-Type': 'application/pdf' });
        res.end();
        return true;
      }
      ifMatch.push(req.headers['if-match']);
      answerGet(req, res, pdf, `"${hex}"`, `W/"${hex}"`);
      return true;
    };
    try {
      const [o] = await enqueueFiles([`s3://inputs/${key}`], config(), silentLogger());
      expect(o!.error?.describe()).toBeUndefined();
      expect(ifMatch.length).toBeGreaterThan(0);
      expect(new Set(ifMatch)).toEqual(new Set([`"${hex}"`]));
    } finally {
      s3.intercept = null;
    }
  });

  it('a results archive cut off mid-way is resumed though the resuming GET writes its ETag otherwise', async () => {
    const archive = Buffer.from(Array.from({ length: 4000 }, (_, i) => `[${i},"result ${i}"]\n`).join(''));
    const hex = createHash('md5').update(archive).digest('hex');
    const key = 'named/results/dabc/1.jsonl';
    s3.put('store', `blobs/${key}`, archive);
    let gets = 0;
    s3.intercept = (req, res, target) => {
      if (target.key !== `blobs/${key}` || req.method !== 'GET') return false;
      gets++;
      if (gets === 1) {
        // The whole length announced, half of it sent, then the connection dropped.
        res.writeHead(200, { ETag: `"${hex}"`, 'Content-Length': archive.length });
        res.write(archive.subarray(0, archive.length / 2), () => res.socket?.destroy());
        return true;
      }
      answerGet(req, res, archive, `"${hex}"`, hex.toUpperCase());
      return true;
    };
    const client = createS3Client({ forcePathStyle: true, maxAttempts: 1 }, { endpoint: s3.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
    try {
      const store = new S3BlobStore({ client, location: { bucket: 'store', prefix: 'blobs' }, cache: new BlobCache({ dir: join(dir, 'cache-named'), maxBytes: 1 << 20 }) });
      const read = await store.getNamed('results/dabc/1.jsonl');
      expect(gets).toBe(2);
      expect(read?.equals(archive)).toBe(true);
    } finally {
      s3.intercept = null;
      client.destroy();
    }
  });

  it('a version really replaced is still FILE_CHANGED', async () => {
    const key = 'etag/replaced.pdf';
    const pdf = numberedPdf(2, 43);
    s3.put('inputs', key, pdf);
    s3.intercept = (req, res, target) => {
      if (target.key !== key || req.method !== 'GET') return false;
      const other = numberedPdf(2, 44);
      answerGet({ ...req, headers: { ...req.headers, 'if-match': undefined } } as unknown as IncomingMessage, res, other, '', `"${createHash('md5').update(other).digest('hex')}"`);
      return true;
    };
    try {
      const [o] = await enqueueFiles([`s3://inputs/${key}`], config(), silentLogger());
      expect(o!.error?.code).toBe('FILE_CHANGED');
    } finally {
      s3.intercept = null;
    }
  });
});

describe('GCS decompressive transcoding: stored gzip-compressed, served decompressed', () => {
  /** As GCS answers for an object with Content-Encoding: gzip (https://cloud.google.com/storage/docs/transcoding). */
  function gcsTranscoding(key: string, gz: Buffer, seen: string[]): LiteralS3['intercept'] {
    const etag = `"${createHash('md5').update(gz).digest('hex')}"`;
    return (req, res, target) => {
      if (target.key !== key) return false;
      const raw = /gzip/.test(String(req.headers['accept-encoding'] ?? ''));
      seen.push(`${req.method} ${raw ? 'gzip' : 'plain'}${req.headers.range ? ' range' : ''}`);
      if (req.method === 'HEAD') {
        res.writeHead(200, { ETag: etag, 'Content-Length': gz.length, 'Content-Encoding': 'gzip', 'Content-Type': 'application/pdf' });
        res.end();
        return true;
      }
      if (req.headers['if-match'] !== undefined && req.headers['if-match'] !== etag) return false;
      if (raw) {
        res.writeHead(200, { ETag: etag, 'Content-Length': gz.length, 'Content-Encoding': 'gzip', 'Content-Type': 'application/pdf' });
        res.end(gz);
        return true;
      }
      // Decompressed, whole (Range ignored), chunked: no Content-Length, no Content-Encoding.
      res.writeHead(200, { ETag: etag, 'Content-Type': 'application/pdf' });
      res.end(gunzipSync(gz));
      return true;
    };
  }

  for (const [where, blobDir] of [['a folder', undefined], ['s3://', 's3://store/blobs']] as const) {
    it(`the PDF goes in whole, its blob the decompressed bytes (BLOB_DIR ${where})`, async () => {
      const key = `gz/${where === 'a folder' ? 'local' : 's3'}.pdf`;
      const pdf = numberedPdf(12, 50 + (blobDir ? 1 : 0));
      const gz = gzipSync(pdf);
      expect(gz.length).toBeLessThan(pdf.length / 2);
      s3.put('inputs', key, gz);
      const seen: string[] = [];
      s3.intercept = gcsTranscoding(key, gz, seen);
      try {
        const cfg = config(blobDir ? { blobDir } : {});
        const [o] = await enqueueFiles([`s3://inputs/${key}`], cfg, silentLogger());
        expect(o!.error?.describe()).toBeUndefined();
        expect(o!.runs![0]!.units).toBe(12);
        const sha = createHash('sha256').update(pdf).digest('hex');
        if (blobDir) {
          const stored = s3.buckets.get('store')!.get(`blobs/${sha.slice(0, 2)}/${sha}`);
          expect(stored?.body.equals(pdf)).toBe(true);
        }
        const { DocStore } = await import('../../src/store/docs.ts');
        const { Redis } = await import('ioredis');
        const redis = new Redis(TEST_REDIS_URL);
        try {
          const record = await new DocStore(redis, cfg.prefix).get(o!.runs![0]!.docId);
          expect(record?.meta).toMatchObject({ sha256: sha, blob: sha });
        } finally {
          redis.disconnect();
        }
      } finally {
        s3.intercept = null;
      }
    });
  }
});

describe('GCS decompressive transcoding, and an s3:// BLOB_DIR that takes large blobs in parts', () => {
  /** Multipart uploads, as S3 answers them (CreateMultipartUpload, UploadPart, Complete, Abort), in `bucket`. */
  function multipart(bucket: string, puts: number[]): (req: IncomingMessage, res: ServerResponse, target: { bucket: string; key: string | null; body: Buffer }) => boolean {
    const parts = new Map<number, Buffer>();
    return (req, res, target) => {
      if (target.bucket !== bucket || target.key === null) return false;
      const q = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
      const xml = (body: string) => {
        res.writeHead(200, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (req.method === 'PUT') puts.push(target.body.length);
      if (req.method === 'POST' && q.has('uploads')) return (xml(`<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${target.key}</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>`), true);
      if (req.method === 'PUT' && q.has('uploadId')) {
        parts.set(Number(q.get('partNumber')), target.body);
        res.writeHead(200, { ETag: `"part${q.get('partNumber')}"`, 'Content-Length': 0 });
        res.end();
        return true;
      }
      if (req.method === 'POST' && q.has('uploadId')) {
        s3.put(bucket, target.key, Buffer.concat([...parts.entries()].sort(([a], [b]) => a - b).map(([, b]) => b)));
        return (xml(`<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${target.key}</Key><ETag>"whole-${parts.size}"</ETag></CompleteMultipartUploadResult>`), true);
      }
      return false;
    };
  }

  it('a PDF far larger than its gzip goes to BLOB_DIR in parts: no PUT beyond S3_PART_SIZE_MB (the HEAD\'s compressed length is not its size)', async () => {
    const key = 'gz/big.pdf';
    const pdf = numberedPdf(120, 8000); // ~6.7 MB, ~60 kB gzipped
    const gz = gzipSync(pdf);
    s3.put('inputs', key, gz);
    const etag = `"${createHash('md5').update(gz).digest('hex')}"`;
    const puts: number[] = [];
    const store = multipart('store', puts);
    s3.intercept = (req, res, target) => {
      if (target.bucket === 'store') return store(req, res, target);
      if (target.key !== key) return false;
      if (req.method === 'HEAD') {
        res.writeHead(200, { ETag: etag, 'Content-Length': gz.length, 'Content-Encoding': 'gzip', 'Content-Type': 'application/pdf' });
        res.end();
        return true;
      }
      res.writeHead(200, { ETag: etag, 'Content-Type': 'application/pdf' }); // decompressed, whole, chunked
      res.end(pdf);
      return true;
    };
    try {
      const [o] = await enqueueFiles([`s3://inputs/${key}`], config({ blobDir: 's3://store/blobs', s3PartSizeMb: 5 }), silentLogger());
      expect(o!.error?.describe()).toBeUndefined();
      expect(o!.runs![0]!.units).toBe(120);
      const sha = createHash('sha256').update(pdf).digest('hex');
      expect(s3.buckets.get('store')!.get(`blobs/${sha.slice(0, 2)}/${sha}`)?.body.equals(pdf)).toBe(true);
      expect(Math.max(...puts)).toBeLessThanOrEqual(5 * 1024 * 1024);
    } finally {
      s3.intercept = null;
    }
  }, 60_000);
});

describe('a bucket with S3 Object Lock (a default retention): uploads need a checksum', () => {
  /** As AWS answers a PutObject to such a bucket without Content-MD5 or x-amz-checksum-* (its words). */
  function objectLock(bucket: string, seen: string[]): LiteralS3['intercept'] {
    return (req, res, target) => {
      if (target.bucket !== bucket || req.method !== 'PUT' || target.key === null) return false;
      const sums = Object.keys(req.headers).filter((h) => h === 'content-md5' || (h.startsWith('x-amz-checksum-') && h !== 'x-amz-checksum-algorithm'));
      seen.push(sums.join(',') || 'none');
      if (sums.length > 0) return false;
      const body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidRequest</Code><Message>Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters</Message><RequestId>R</RequestId></Error>';
      res.writeHead(400, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
      return true;
    };
  }

  it('BLOB_DIR there: enqueue stops saying what the bucket wants and which setting sends it; with S3_CHECKSUMS=when_supported it goes in', async () => {
    s3.put('locked', 'x', '');
    const seen: string[] = [];
    s3.intercept = objectLock('locked', seen);
    const pdf = numberedPdf(1, 61);
    s3.put('inputs', 'lock/a.pdf', pdf);
    try {
      const refused = await enqueueFiles(['s3://inputs/lock/a.pdf'], config({ blobDir: 's3://locked/blobs' }), silentLogger()).catch((e: unknown) => e as DocbatchError);
      expect(refused).toBeInstanceOf(DocbatchError);
      expect((refused as DocbatchError).describe()).toMatch(/the bucket wants a checksum on every upload \(S3 Object Lock with a default retention\): set S3_CHECKSUMS=when_supported/);
      const [o] = await enqueueFiles(['s3://inputs/lock/a.pdf'], config({ blobDir: 's3://locked/blobs', s3Checksums: 'when_supported' }), silentLogger());
      expect(o!.error?.describe()).toBeUndefined();
      expect(seen[0]).toBe('none');
      expect(seen.at(-1)).toMatch(/x-amz-checksum-crc32/);
      const sha = createHash('sha256').update(pdf).digest('hex');
      expect(s3.buckets.get('locked')!.get(`blobs/${sha.slice(0, 2)}/${sha}`)?.body.equals(pdf)).toBe(true);
    } finally {
      s3.intercept = null;
    }
  });
});
