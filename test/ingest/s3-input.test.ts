/**
 * `enqueue s3://bucket/prefix/` (src/ingest/s3-input.ts) against a real S3-protocol server:
 * the same files in a folder and under a prefix get the same outcome, file for file: the same
 * document ids (the same bytes hashed), the same codes and places for the bad ones, the place
 * naming the s3:// URI; `--glob` filters keys; a missing object or bucket is FILE_UNREADABLE with
 * the reason; and nothing of the inputs stays on this machine (exports stream, PDFs pass through
 * one temporary that is gone after).
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import type { DocbatchError } from '../../src/errors.ts';
import { enqueueFiles, type FileOutcome } from '../../src/ingest/batch.ts';
import { findDocuments } from '../../src/ingest/retry.ts';
import { DocStore } from '../../src/store/docs.ts';
import { Redis } from 'ioredis';
import { silentLogger } from '../../src/observe/log.ts';
import { makeZip } from './chat/fixtures.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { flakyProxy, startS3Server, testClient, useS3Env, type FlakyProxy, type S3Server } from '../helpers/s3.ts';

const SAMPLE = readFileSync(join(import.meta.dirname, '..', '..', 'samples', 'conversations.json'));
const first = JSON.parse(SAMPLE.toString())[0];

let s3: S3Server;
let dir: string;
let restoreEnv: () => void;
const prefixes: string[] = [];
let files: Record<string, Buffer>;

beforeAll(async () => {
  s3 = await startS3Server(['inputs', 'store']);
  restoreEnv = useS3Env(s3.env);
  dir = await mkdtemp(join(tmpdir(), 'docbatch-s3input-'));
  files = {
    'good.pdf': numberedPdf(2),
    'deep/er/chat.json': SAMPLE,
    'export.zip': makeZip([{ name: 'conversations.json', data: SAMPLE, deflate: true }]),
    'empty.pdf': Buffer.alloc(0),
    'picture.pdf': await sharp({ create: { width: 8, height: 8, channels: 3, background: '#fff' } }).png().toBuffer(),
    'truncated.pdf': numberedPdf(3).subarray(0, 40),
    'bad.json': Buffer.from(`[${JSON.stringify(first)},\n {"title": oops}]`),
    'utf8.json': Buffer.concat([Buffer.from('[{"title":"'), Buffer.from([0xff, 0xfe]), Buffer.from('","mapping":{},"current_node":null}]')]),
    'notes.txt': Buffer.from('just some notes\n'),
  };
  for (const [name, bytes] of Object.entries(files)) {
    await mkdir(join(dir, 'in', name, '..'), { recursive: true });
    await writeFile(join(dir, 'in', name), bytes);
    await s3.put('inputs', `batch/${name}`, bytes);
  }
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
  return { ...loadConfig({}, {}), redisUrl: TEST_REDIS_URL, prefix, outDir: join(dir, 'out'), blobDir: join(dir, `blobs-${prefix}`), cacheDir: join(dir, `cache-${prefix}`), s3ForcePathStyle: true, logLevel: 'silent', ...overrides };
}

/** name (relative to the folder or prefix) → doc ids, or `CODE place-without-file`. */
function summary(outcomes: FileOutcome[], root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const o of outcomes) {
    const name = o.file.startsWith('s3://') ? o.file.slice(root.length) : relative(root, o.file);
    if (o.skipped !== undefined) out[name] = 'skipped';
    else if (o.error) {
      const { file, ...place } = (o.error as DocbatchError).place ?? {};
      expect(file, name).toBe(o.file);
      out[name] = `${o.error.code} ${JSON.stringify(place)}`;
    } else out[name] = (o.runs ?? []).map((r) => r.docId).join(',');
  }
  return out;
}

async function filesUnder(path: string): Promise<string[]> {
  try {
    return (await readdir(path, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => relative(path, join(e.parentPath, e.name)));
  } catch {
    return [];
  }
}

describe('enqueue s3://bucket/prefix/', () => {
  it('the same files in a folder and under a prefix: the same document ids, the same codes and places', async () => {
    const localRun = summary(await enqueueFiles([join(dir, 'in')], config(), silentLogger()), join(dir, 'in'));
    const cfg = config();
    const s3Run = summary(await enqueueFiles(['s3://inputs/batch/'], cfg, silentLogger()), 's3://inputs/batch/');
    expect(s3Run).toEqual(localRun);
    expect(Object.keys(s3Run).sort()).toEqual(Object.keys(files).sort());
    expect(s3Run['good.pdf']).toMatch(/^d[0-9a-f]{20}$/);
    expect(s3Run['deep/er/chat.json']).toMatch(/^d[0-9a-f]{20}$/);
    expect(s3Run['export.zip']).toMatch(/^d[0-9a-f]{20}$/);
    expect(s3Run['truncated.pdf']).toMatch(/^PDF_CORRUPT/);
    expect(s3Run['bad.json']).toMatch(/^EXPORT_BAD_JSON \{.*"offset":\d+/);
    expect(s3Run['utf8.json']).toMatch(/^EXPORT_BAD_UTF8 \{.*"offset":11/);
    expect(s3Run['notes.txt']).toBe('skipped');
    // Nothing of the inputs stayed here: the blob store is local, but its tmp/ is empty, and the
    // cache (unused by a producer with a local store) holds nothing.
    expect(await filesUnder(join(cfg.blobDir, 'tmp'))).toEqual([]);
    expect(await filesUnder(cfg.cacheDir)).toEqual([]);
  });

  it('named one by one: the object itself; --glob over the keys; the place is the URI', async () => {
    const cfg = config();
    const outcomes = await enqueueFiles(['s3://inputs/batch/picture.pdf', 's3://inputs/batch/good.pdf'], cfg, silentLogger());
    expect(outcomes.map((o) => [o.file, o.error?.code ?? 'ok'])).toEqual([
      ['s3://inputs/batch/picture.pdf', 'NOT_PDF'],
      ['s3://inputs/batch/good.pdf', 'ok'],
    ]);
    expect(outcomes[0]!.error!.describe()).toMatch(/^s3:\/\/inputs\/batch\/picture\.pdf: NOT_PDF: named \.pdf but its bytes are not a PDF/);
    const globbed = await enqueueFiles(['s3://inputs/batch'], cfg, silentLogger(), { glob: '**/*.json' });
    expect(globbed.map((o) => o.file).sort()).toEqual(['s3://inputs/batch/bad.json', 's3://inputs/batch/deep/er/chat.json', 's3://inputs/batch/utf8.json']);
    // `docbatch retry s3://...` finds the runs of an object's content, as it does for a file.
    const redis = new Redis(TEST_REDIS_URL);
    try {
      const found = await findDocuments(new DocStore(redis, cfg.prefix), 's3://inputs/batch/good.pdf', () => s3.client);
      expect(found.map((r) => r.docId)).toEqual([outcomes[1]!.runs![0]!.docId]);
      expect(await findDocuments(new DocStore(redis, cfg.prefix), 's3://inputs/batch/nope.pdf', () => s3.client)).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });

  it('a missing object, an empty prefix, a missing bucket: FILE_UNREADABLE with the reason, the other inputs still go in', async () => {
    const outcomes = await enqueueFiles(['s3://inputs/batch/nope.pdf', 's3://inputs/nothing-here/', 's3://no-such-bucket/x/', 's3://inputs/batch/good.pdf'], config(), silentLogger());
    const by = Object.fromEntries(outcomes.map((o) => [o.file, o.error ? `${o.error.code}: ${o.error.message}` : 'ok']));
    expect(by['s3://inputs/batch/nope.pdf']).toMatch(/^FILE_UNREADABLE: no such object/);
    expect(by['s3://inputs/nothing-here/']).toMatch(/^FILE_UNREADABLE: nothing under this prefix/);
    expect(by['s3://no-such-bucket/x/']).toMatch(/^FILE_UNREADABLE: .*bucket does not exist/);
    expect(by['s3://inputs/batch/good.pdf']).toBe('ok');
  });

  it('with BLOB_DIR on S3 too: the inputs go from bucket to bucket, the machine keeps nothing', async () => {
    const cfg = config({ blobDir: 's3://store/blobs' });
    const outcomes = await enqueueFiles(['s3://inputs/batch/good.pdf', 's3://inputs/batch/deep/er/chat.json', 's3://inputs/batch/export.zip'], cfg, silentLogger());
    expect(outcomes.map((o) => o.error?.code ?? 'ok')).toEqual(['ok', 'ok', 'ok']);
    const keys = await s3.keys('store', 'blobs/');
    expect(keys).toContain('blobs/.docbatch-store');
    // The PDF itself, and for each export its sidecar and chunk index (the two exports hold the
    // same conversations: one sidecar and one index between them), and the tasks.
    expect(keys.filter((k) => /^blobs\/[0-9a-f]{2}\/[0-9a-f]{64}$/.test(k)).length).toBeGreaterThanOrEqual(4);
    expect(await filesUnder(cfg.cacheDir)).toEqual([]);
    expect(await filesUnder(cfg.blobDir.startsWith('s3://') ? join(dir, 'nothing') : cfg.blobDir)).toEqual([]);
  });

  it('an object the store will not give (5xx past the attempts) is an error, not "not a document"; a body cut off is fetched again; a blob PUT that fails rejects only its file', async () => {
    const proxy = await flakyProxy(s3.endpoint);
    const before = process.env.AWS_ENDPOINT_URL;
    process.env.AWS_ENDPOINT_URL = proxy.endpoint;
    try {
      const cfg = config({ s3MaxAttempts: 2 });
      // Two 500s for the first GET (both attempts): that object is FILE_UNREADABLE, listed as an
      // error with the store's words; the next is read whole though its body is cut off once.
      proxy.failNext([{ status: 500, code: 'InternalError' }, { status: 500, code: 'InternalError' }, { cutAfterBytes: 300 }], 'GET');
      const outcomes = await enqueueFiles(['s3://inputs/batch/good.pdf', 's3://inputs/batch/export.zip'], cfg, silentLogger());
      expect(outcomes.map((o) => [o.file, o.error?.code ?? o.skipped ?? o.runs?.[0]?.outcome])).toEqual([
        ['s3://inputs/batch/good.pdf', 'FILE_UNREADABLE'],
        ['s3://inputs/batch/export.zip', 'enqueued'],
      ]);
      expect(outcomes[0]!.error!.message).toMatch(/InternalError/);
      // Blobs on S3 too: both attempts of one file's blob PUT refused. That file is rejected
      // with the store's code; the file after it still goes in (the command stopped there).
      const both = config({ s3MaxAttempts: 2, blobDir: 's3://store/blobs-fail' });
      const { openBlobStore } = await import('../../src/store/storage.ts');
      await openBlobStore(both).markStore();
      proxy.failNext([{ status: 503, code: 'SlowDown' }, { status: 503, code: 'SlowDown' }], 'PUT');
      const put = await enqueueFiles(['s3://inputs/batch/good.pdf', 's3://inputs/batch/deep/er/chat.json'], both, silentLogger());
      expect(put.map((o) => o.error?.code ?? o.runs?.[0]?.outcome)).toEqual(['BLOB_STORE_UNAVAILABLE', 'enqueued']);
    } finally {
      process.env.AWS_ENDPOINT_URL = before;
      await proxy.close();
    }
  }, 60_000);
});

/** Runs `body` with the producer's S3 client going through a fresh proxy in front of s3rver. */
async function throughProxy(body: (proxy: FlakyProxy) => Promise<void>): Promise<void> {
  const proxy = await flakyProxy(s3.endpoint);
  const before = process.env.AWS_ENDPOINT_URL;
  process.env.AWS_ENDPOINT_URL = proxy.endpoint;
  try {
    await body(proxy);
  } finally {
    process.env.AWS_ENDPOINT_URL = before;
    await proxy.close();
  }
}

describe('one version of each object, and its length as the store gives it', () => {
  it('an object replaced between its HEAD and its GET is FILE_CHANGED (GETs carry If-Match on the HEAD\'s ETag), never read as another version', async () => {
    await throughProxy(async (proxy) => {
      const uri = 's3://inputs/swap/doc.pdf';
      await s3.put('inputs', 'swap/doc.pdf', numberedPdf(2, 7));
      const registered = (await s3.client.send(new HeadObjectCommand({ Bucket: 'inputs', Key: 'swap/doc.pdf' }))).ETag;
      // Replaced once HEAD said what it is, before the first byte is read. s3rver ignores
      // If-Match, as some stores do: the ETag of what was sent gives it away.
      proxy.failNext([{ before: () => s3.put('inputs', 'swap/doc.pdf', numberedPdf(3, 8)) }], 'GET');
      const [changed] = await enqueueFiles([uri], config(), silentLogger());
      expect(changed!.error?.code).toBe('FILE_CHANGED');
      expect(changed!.error!.describe()).toMatch(/^s3:\/\/inputs\/swap\/doc\.pdf: FILE_CHANGED: the object was replaced while it was being read \(its ETag was "[0-9a-f]+", now "[0-9a-f]+"\); enqueue it again once it is complete$/);
      const gets = proxy.seen().filter((r) => r.method === 'GET' && r.url.includes('/swap/doc.pdf'));
      expect(gets.length).toBeGreaterThan(0);
      expect(gets.map((r) => r.headers['if-match'])).toEqual(gets.map(() => registered));

      // A store that enforces If-Match answers 412: the same.
      proxy.failNext([{ status: 412, code: 'PreconditionFailed' }], 'GET');
      const [refused] = await enqueueFiles([uri], config(), silentLogger());
      expect(refused!.error?.code).toBe('FILE_CHANGED');
      expect(refused!.error!.message).toMatch(/^the object was replaced while it was being read \(the store has no version with ETag "[0-9a-f]+" any more: If-Match failed\)/);

      // Left alone, the version there now goes in: three pages, not two.
      const [ok] = await enqueueFiles([uri], config(), silentLogger());
      expect(ok!.runs?.[0]?.outcome).toBe('enqueued');
      expect(ok!.runs?.[0]?.units).toBe(3);
    });
  });

  it('a HEAD without Content-Length is a length unknown, not an empty object: learned from the first ranged GET', async () => {
    await throughProxy(async (proxy) => {
      // The fault is real: the SDK sees no length at all.
      proxy.failNext([{ dropHeaders: ['content-length'] }], 'HEAD');
      expect((await testClient(proxy.endpoint).send(new HeadObjectCommand({ Bucket: 'inputs', Key: 'batch/good.pdf' }))).ContentLength).toBeUndefined();

      const names = ['good.pdf', 'deep/er/chat.json', 'export.zip', 'empty.pdf'];
      const local = summary(await enqueueFiles(names.map((n) => join(dir, 'in', n)), config(), silentLogger()), join(dir, 'in'));
      // Every HEAD (the walk's and the object's) loses its length.
      proxy.failNext(Array.from({ length: 2 * names.length }, () => ({ dropHeaders: ['content-length'] })), 'HEAD');
      const remote = summary(await enqueueFiles(names.map((n) => `s3://inputs/batch/${n}`), config(), silentLogger()), 's3://inputs/batch/');
      expect(proxy.stats().faulted).toBe(1 + 2 * names.length);
      expect(remote).toEqual(local);
      expect(remote['good.pdf']).toMatch(/^d[0-9a-f]{20}$/);
      expect(remote['empty.pdf']).toMatch(/^EMPTY_FILE/);
    });
  });
});
