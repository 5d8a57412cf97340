/**
 * Input keys as object stores keep them: literally. An S3 key is any string of up to 1,024 UTF-8
 * bytes, and `in//a.pdf`, `in/./a.pdf`, `in/x/../a.pdf`, `/a.pdf` and `in/..` are objects of
 * their own on AWS, MinIO, R2 and the others (s3rver, which keeps objects as files, folds or
 * refuses them: test/helpers/s3-literal.ts). They were listed, then refused as FILE_UNREADABLE
 * ("the key prefix has an empty, "." or ".." part"): the check meant for BLOB_DIR and OUT_DIR was
 * applied to every input object. Now each is read under its own key, and its output name stays a
 * plain name under OUT_DIR whatever the key says.
 *
 * A key with a carriage return was listed as another key: in a plain XML listing the CR reads
 * back as a line feed (XML's end-of-line rule; AWS writes it raw, boto/boto#23), so the object
 * was FILE_UNREADABLE "no such object". Listings now ask for encoding-type=url and decode.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { enqueueFiles } from '../../src/ingest/batch.ts';
import { findDocuments } from '../../src/ingest/retry.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { DocStore } from '../../src/store/docs.ts';
import { createS3Client } from '../../src/store/s3.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { useS3Env } from '../helpers/s3.ts';
import { startLiteralS3, type LiteralS3 } from '../helpers/s3-literal.ts';

let s3: LiteralS3;
let dir: string;
let restoreEnv: () => void;
const prefixes: string[] = [];

/** Keys real stores keep as written, each a PDF of its own (pages = its index + 1). */
const KEYS = ['w/a b+c%20.pdf', 'w/line\rend.pdf', 'w/caf\u00e9.pdf', 'w/cafe\u0301.pdf', 'w//double.pdf', 'w/./dot.pdf', 'w/x/../up.pdf', 'w/../../escape.pdf', 'w/..', `w/${'L'.repeat(1010)}.pdf`];

beforeAll(async () => {
  s3 = await startLiteralS3();
  restoreEnv = useS3Env({ AWS_ENDPOINT_URL: s3.endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', S3_FORCE_PATH_STYLE: 'true' });
  dir = await mkdtemp(join(tmpdir(), 'docbatch-s3keys-'));
  KEYS.forEach((key, i) => s3.put('inputs', key, numberedPdf(i + 1)));
  s3.put('inputs', 'w/folder/', ''); // a console's folder marker
  s3.put('inputs', '/lead.pdf', numberedPdf(2));
  s3.put('inputs', 'lead.pdf', Buffer.from('not this one'));
});

afterAll(async () => {
  restoreEnv?.();
  await s3?.close();
  for (const p of prefixes) await deletePrefix(p);
  await rm(dir, { recursive: true, force: true });
});

function config(): Config {
  const prefix = uniquePrefix(import.meta.filename);
  prefixes.push(prefix);
  return { ...loadConfig({}, {}), redisUrl: TEST_REDIS_URL, prefix, outDir: join(dir, 'out'), blobDir: join(dir, `blobs-${prefix}`), cacheDir: join(dir, `cache-${prefix}`), s3ForcePathStyle: true, logLevel: 'silent' };
}

describe('input keys are literal', () => {
  it('every object under a prefix goes in under its own key, as a plain name inside OUT_DIR', async () => {
    const outcomes = await enqueueFiles(['s3://inputs/w/'], config(), silentLogger());
    const by = Object.fromEntries(outcomes.map((o) => [o.file.slice('s3://inputs/'.length), o.error ? `${o.error.code}: ${o.error.message}` : o.runs!.map((r) => `${r.outcome} ${r.units}`).join()]));
    // Each read as itself: its own page count (a key folded to another would be another PDF, or missing).
    expect(by).toEqual(Object.fromEntries(KEYS.map((k, i) => [k, `enqueued ${i + 1}`])));
    const names = Object.fromEntries(outcomes.map((o) => [o.file.slice('s3://inputs/'.length), o.runs![0]!.name]));
    for (const name of Object.values(names)) expect(name).toMatch(/^[^/\\.][^/\\]*$/);
    expect(names['w/../../escape.pdf']).toBe('escape');
    expect(names['w/..']).toBe('document');
    // The SDK sent each key as written: nothing in between folded `..`, `.` or `//`.
    const gets = s3.requests.filter((r) => r.method === 'GET' && !r.url.includes('list-type')).map((r) => decodeURIComponent(r.url.replace(/\?.*$/, '')));
    for (const key of KEYS) expect(gets, key).toContain(`/inputs/${key}`);
  });

  it('named one by one, and found again by `retry`: the key as written, a leading `/` included', async () => {
    const cfg = config();
    const outcomes = await enqueueFiles(['s3://inputs/w//double.pdf', 's3://inputs/w/x/../up.pdf', 's3://inputs//lead.pdf'], cfg, silentLogger());
    expect(outcomes.map((o) => [o.file, o.error?.code ?? o.runs?.[0]?.units])).toEqual([
      ['s3://inputs/w//double.pdf', KEYS.indexOf('w//double.pdf') + 1],
      ['s3://inputs/w/x/../up.pdf', KEYS.indexOf('w/x/../up.pdf') + 1],
      ['s3://inputs//lead.pdf', 2],
    ]);
    const redis = new Redis(TEST_REDIS_URL);
    const client = createS3Client({ forcePathStyle: true, maxAttempts: 1 });
    try {
      const found = await findDocuments(new DocStore(redis, cfg.prefix), 's3://inputs/w//double.pdf', () => client);
      expect(found.map((r) => r.docId)).toEqual([outcomes[0]!.runs![0]!.docId]);
    } finally {
      redis.disconnect();
      client.destroy();
    }
  });
});
