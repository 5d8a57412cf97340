/**
 * Results archives (src/store/archive.ts) are written and read line by line, never as one string
 * or Buffer of their size: a document whose results pass V8's longest string (~512 MiB, some
 * 300,000 chat chunks) could otherwise never be archived, so never written, nor restored.
 *
 * The limit is shown where modest memory reaches it: a child process whose heap is capped at
 * HEAP_MB archives, restores and looks up results ~3.5 times that size, in a folder and on S3
 * (real Redis, a real folder, s3rver). Code that joins the lines, or turns the archive's bytes
 * into one string, dies there of heap exhaustion, as it dies of the string limit on a real
 * document. And the promises around it: a source that fails part-way leaves the archive as it
 * was (folder, S3 multipart); an S3 read cut off mid-body resumes from the same version, and an
 * archive replaced while it is read is read again from the start, never mixed.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveKey } from '../../src/store/archive.ts';
import { BlobCache } from '../../src/store/blob-cache.ts';
import { NamedObjectChanged, type BlobStore } from '../../src/store/blobs.ts';
import { LocalBlobStore } from '../../src/store/blobs-local.ts';
import { S3BlobStore } from '../../src/store/blobs-s3.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { flakyProxy, startS3Server, testClient, type FlakyProxy, type S3Server } from '../helpers/s3.ts';

const NODE = join(import.meta.dirname, '..', '..', 'node_modules', '.bin', 'node');
const CHILD = join(import.meta.dirname, 'archive-big.child.ts');
const HEAP_MB = 48;
/** 40,000 results of 4,000 characters: a 165 MB archive, 3.4 times the child's whole heap. */
const UNITS = 40_000;
const RESULT_BYTES = 4_000;

let s3: S3Server;
let proxy: FlakyProxy;
let dir: string;
const prefixes: string[] = [];

beforeAll(async () => {
  s3 = await startS3Server(['blobs']);
  proxy = await flakyProxy(s3.endpoint);
  dir = await mkdtemp(join(tmpdir(), 'docbatch-archive-big-'));
});

afterAll(async () => {
  await proxy?.close();
  await s3?.close();
  for (const p of prefixes) await deletePrefix(p);
  await rm(dir, { recursive: true, force: true });
});

/** Runs the child against BLOB_DIR (not spawnSync: s3rver answers from this process); its JSON line, or its death. */
async function runChild(blobDir: string, env: Record<string, string> = {}): Promise<{ status: number | null; signal: string | null; out: Record<string, unknown> | null; stderr: string }> {
  const prefix = uniquePrefix(import.meta.filename);
  prefixes.push(prefix);
  const child = spawn(NODE, [`--max-old-space-size=${HEAP_MB}`, CHILD], {
    env: { ...process.env, ...env, REDIS_URL: TEST_REDIS_URL, PREFIX: prefix, BLOB_DIR: blobDir, CACHE_DIR: join(dir, `cache-${prefix}`), UNITS: String(UNITS), RESULT_BYTES: String(RESULT_BYTES) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
  const [status, signal] = (await once(child, 'close')) as [number | null, string | null];
  clearTimeout(timer);
  let out: Record<string, unknown> | null = null;
  try {
    out = JSON.parse(stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>;
  } catch {
    // it died
  }
  return { status, signal, out, stderr };
}

const expected = { archived: UNITS, restored: true, inRedis: UNITS, sameAsWritten: true, lastFound: true, missing: null };

describe('an archive larger than the heap of the process that writes and reads it', () => {
  it('in a folder: archived, restored whole and looked up, in a heap a third of its size', async () => {
    const r = await runChild(join(dir, 'blobs'));
    expect(r.stderr).not.toMatch(/heap limit|out of memory/i);
    expect(r.out, r.stderr).toMatchObject(expected);
    expect(r.status).toBe(0);
    const [name] = await readdir(join(dir, 'blobs', 'named', 'results', 'dbig'));
    expect(name).toBe('1.jsonl');
  }, 180_000);

  it('on S3: archived as a multipart upload, restored whole and looked up, in the same heap', async () => {
    const r = await runChild('s3://blobs/big', { ...s3.env });
    expect(r.stderr).not.toMatch(/heap limit|out of memory/i);
    expect(r.out, r.stderr).toMatchObject(expected);
    expect(r.status).toBe(0);
    expect(await s3.keys('blobs', 'big/named/')).toEqual(['big/named/results/dbig/1.jsonl']);
  }, 180_000);
});

/** Pieces that fail after `before` of them: a source (Redis, say) lost part-way through an archive. */
async function* failingAfter(before: number, piece: string): AsyncGenerator<string> {
  for (let i = 0; i < before; i++) yield piece;
  throw new Error('the source went away');
}

function s3Store(endpoint = s3.endpoint): S3BlobStore {
  return new S3BlobStore({ client: testClient(endpoint, { maxAttempts: 1 }), location: { bucket: 'blobs', prefix: 'promises' }, cache: new BlobCache({ dir: join(dir, 'cache-promises'), maxBytes: 1 << 20 }), partSizeBytes: 5 * 1024 * 1024 });
}

describe('whole or not at all, one version', () => {
  const key = archiveKey('dwhole', 1);
  const line = `[0,{"ok":true,"text":"${'x'.repeat(1 << 16)}"}]\n`;

  for (const where of ['folder', 's3'] as const) {
    it(`${where}: a source that fails part-way (past a part) leaves the archive as it was`, async () => {
      const blobs: BlobStore = where === 'folder' ? new LocalBlobStore(join(dir, 'whole')) : s3Store();
      await blobs.markStore();
      await blobs.putNamed(key, 'the archive before\n');
      // 160 pieces of 64 KiB: 10 MiB, two parts, then the source fails.
      const err = await blobs.putNamed(key, failingAfter(160, line)).catch((e: unknown) => e);
      expect((err as Error).message).toBe('the source went away');
      expect((await blobs.getNamed(key))?.toString()).toBe('the archive before\n');
      if (where === 'folder') expect(await readdir(join(dir, 'whole', 'named', 'results', 'dwhole'))).toEqual(['1.jsonl']);
      else expect(await s3.keys('blobs', 'promises/named/')).toEqual([`promises/named/${key}`]);
      // Written from pieces that end: read back the same, piece by piece.
      await blobs.putNamed(key, (async function* () {
        for (let i = 0; i < 100; i++) yield line;
      })());
      const body = await blobs.openNamed(key);
      let bytes = 0;
      let lines = 0;
      for await (const chunk of body!) {
        bytes += (chunk as Buffer).length;
        lines += (chunk as Buffer).toString('latin1').split('\n').length - 1;
      }
      expect([bytes, lines]).toEqual([100 * line.length, 100]);
    });
  }

  it('s3: a read cut off mid-body resumes where it stopped (If-Match on its ETag); replaced meanwhile, it fails as changed', async () => {
    const writer = s3Store();
    const text = Array.from({ length: 2000 }, (_, u) => `[${u},{"ok":true,"text":"unit ${u}"}]\n`).join('');
    await writer.putNamed(key, text);
    const reader = s3Store(proxy.endpoint);
    const before = proxy.stats().requests.GET ?? 0;
    proxy.failNext([{ cutAfterBytes: 5000 }], 'GET');
    expect((await reader.getNamed(key))?.toString()).toBe(text);
    expect((proxy.stats().requests.GET ?? 0) - before).toBe(2);
    const [first, resumed] = proxy.seen().slice(-2);
    expect(first!.headers['if-match']).toBeUndefined();
    expect(resumed!.headers).toMatchObject({ range: 'bytes=5000-', 'if-match': (await s3.client.send(new HeadObjectCommand({ Bucket: 'blobs', Key: `promises/named/${key}` }))).ETag });

    // The body is cut at 5000 bytes; the object is replaced before the rest is asked for.
    proxy.failNext([{ cutAfterBytes: 5000 }], 'GET');
    const body = await reader.openNamed(key);
    await writer.putNamed(key, text.replace('unit 1999', 'unit 1999, again'));
    const err = await (async () => {
      for await (const _ of body!);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NamedObjectChanged);
  });
});
