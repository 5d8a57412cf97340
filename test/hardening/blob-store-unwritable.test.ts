/**
 * BLOB_DIR that cannot take what `enqueue` stores: a folder the user may not write (EACCES, as a
 * user other than root) and a full filesystem (ENOSPC on a real tmpfs of 1 MiB, root only). Each
 * stops the command with BLOB_STORE_UNWRITABLE naming BLOB_DIR and what to do, instead of
 * rejecting every input as FILE_UNREADABLE (their fault) or "unexpected error: ENOSPC"; the files
 * before are in, nothing half-written is left in the store, and the same command run again once
 * there is room enqueues the rest. Real files, a real Redis, the real CLI. With BLOB_DIR on s3://
 * (the in-memory S3 peer), what fills up is CACHE_DIR, where a chat export's sidecar is written
 * before it goes up: said the same way, naming CACHE_DIR.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { loadConfig } from '../../src/config.ts';
import { DocbatchError } from '../../src/errors.ts';
import { enqueueFiles } from '../../src/ingest/batch.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { BIN } from '../helpers/cli.ts';
import { tmpfs } from '../helpers/tmpfs.ts';
import { useS3Env } from '../helpers/s3.ts';
import { startLiteralS3 } from '../helpers/s3-literal.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';

const prefix = uniquePrefix(import.meta.filename);
const root = mkdtempSync(join(tmpdir(), 'docbatch-blob-unwritable-'));
chmodSync(root, 0o755);
afterAll(async () => {
  spawnSync('chmod', ['-R', 'u+rwx', root]);
  rmSync(root, { recursive: true, force: true });
  await deletePrefix(prefix);
});

interface Line { file: string; outcome?: string; error?: { code: string } }
function run(args: string[], blobDir: string, asNobody = false): { status: number | null; lines: Line[]; stderr: string } {
  const env = { PATH: process.env.PATH!, REDIS_URL: TEST_REDIS_URL, DOCBATCH_PREFIX: prefix, BLOB_DIR: blobDir, OUT_DIR: join(root, 'out') };
  const argv = asNobody && process.getuid?.() === 0 ? ['runuser', '-u', 'nobody', '--', BIN, ...args] : [BIN, ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, lines: r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line), stderr: r.stderr };
}
/** Every file under `dir`, relative. */
function files(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as Array<{ name: string; parentPath: string; isFile(): boolean }>)
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

let seed = 20; // words on the page: each PDF its own bytes
function inputs(name: string, specs: Array<[string, Buffer | string]>): string[] {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  return specs.map(([file, bytes]) => {
    const path = join(dir, file);
    writeFileSync(path, bytes, { mode: 0o644 });
    return path;
  });
}

// Root writes anywhere: the CLI runs as `nobody` to meet a folder it may not write. That needs root
// and a checkout `nobody` can reach (a clone under /root is not).
const asNobody = process.getuid?.() === 0 && spawnSync('runuser', ['-u', 'nobody', '--', 'test', '-x', BIN]).status === 0;

it.skipIf(!asNobody)('a BLOB_DIR this user may not write: BLOB_STORE_UNWRITABLE naming it, once; the inputs are not blamed', () => {
  const blobs = join(root, 'blobs-locked');
  mkdirSync(blobs, { mode: 0o755 }); // root's: nobody may not write there
  const [a, b] = inputs('locked-in', [['a.pdf', numberedPdf(1, seed++)], ['b.pdf', numberedPdf(1, seed++)]]);
  const r = run(['enqueue', '--json', a!, b!], blobs, true);
  expect(r.lines.filter((l) => l.error), r.stderr).toEqual([]); // no FILE_UNREADABLE for readable files
  expect(r.stderr).not.toMatch(/unexpected error/);
  expect(r.stderr).toMatch(new RegExp(`BLOB_STORE_UNWRITABLE: cannot write into the blob store BLOB_DIR ${blobs}: .*EACCES.*permission`));
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.status).toBe(1);
  expect(files(blobs)).toEqual([]);
}, 120_000);

// A real 1 MiB filesystem to fill (skipped where mounting is refused).
const disk = tmpfs(join(root, 'full'));
const mnt = disk.path;
afterEach(() => disk.unmount());

it.skipIf(!disk.canMount)('a full BLOB_DIR (ENOSPC on a real 1 MiB tmpfs) stops enqueue cleanly: the files before are in, nothing half-written, the rest goes in once there is room', () => {
  expect(disk.mount('1m')).toBe(true);
  const blobs = join(mnt, 'blobs');
  const small = numberedPdf(1, seed++);
  const big = numberedPdf(400, seed++); // ~290 kB
  // A chat export whose sidecar (the chunks' texts) does not fit either: the sidecar's write fails with no path.
  const line = (i: number) => `${JSON.stringify({ id: `c${i}`, title: `T${i}`, messages: [{ role: 'user', content: `question ${i} ${'lorem ipsum '.repeat(400)}` }, { role: 'assistant', content: `answer ${i}` }] })}\n`;
  const chat = Array.from({ length: 60 }, (_, i) => line(i)).join(''); // ~290 kB of text
  const [a, bigPdf, z] = inputs('full-in', [['a.pdf', small], ['b-big.pdf', big], ['c.jsonl', chat]]);
  // Room for the marker, the small PDF and the task, not for the big PDF.
  mkdirSync(blobs);
  writeFileSync(join(mnt, 'filler'), Buffer.alloc(statfsSync(mnt).bavail * statfsSync(mnt).bsize - 150 * 1024));

  const first = run(['enqueue', '--json', a!, bigPdf!, z!], blobs);
  expect(first.stderr).not.toMatch(/unexpected error/);
  expect(first.stderr).toMatch(new RegExp(`BLOB_STORE_UNWRITABLE: cannot write into the blob store BLOB_DIR ${blobs}: .*ENOSPC.*full`));
  expect(first.stderr).toContain(`stopped at ${bigPdf}`);
  expect(first.status).toBe(1);
  expect(first.lines.map((l) => [l.file, l.outcome ?? l.error?.code])).toEqual([[a, 'enqueued']]);
  // Nothing half-written: the small PDF's blob, the task's, the marker; no temporary.
  expect(files(blobs).filter((f) => f.startsWith('tmp/'))).toEqual([]);

  // The chat export alone: its sidecar's write is cut off.
  const chatRun = run(['enqueue', '--json', z!], blobs);
  expect(chatRun.stderr).toMatch(new RegExp(`BLOB_STORE_UNWRITABLE: cannot write into the blob store BLOB_DIR ${blobs}: .*ENOSPC`));
  expect(chatRun.status).toBe(1);
  expect(chatRun.lines).toEqual([]);
  expect(files(blobs).filter((f) => f.startsWith('tmp/'))).toEqual([]);

  rmSync(join(mnt, 'filler'));
  const again = run(['enqueue', '--json', a!, bigPdf!, z!], blobs);
  expect(again.stderr).toBe('');
  expect(again.status).toBe(0);
  expect(again.lines.map((l) => [l.file, l.outcome])).toEqual([[a, 'resumed'], [bigPdf, 'enqueued'], [z, 'enqueued']]);
}, 120_000);

it.skipIf(!disk.canMount)('BLOB_DIR on s3://, CACHE_DIR full: BLOB_STORE_UNWRITABLE naming CACHE_DIR, not an unexpected ENOSPC', async () => {
  expect(disk.mount('1m')).toBe(true);
  const s3 = await startLiteralS3();
  const restore = useS3Env({ AWS_ENDPOINT_URL: s3.endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' });
  try {
    s3.put('store', 'blobs/.docbatch-store', 'docbatch blob store\n');
    const line = (i: number) => `${JSON.stringify({ id: `c${i}`, title: `T${i}`, messages: [{ role: 'user', content: `question ${i} ${'lorem ipsum '.repeat(400)}` }, { role: 'assistant', content: `answer ${i}` }] })}\n`;
    const [z] = inputs('cache-in', [['c.jsonl', Array.from({ length: 60 }, (_, i) => line(i)).join('')]]);
    const cache = join(mnt, 'cache');
    mkdirSync(cache);
    writeFileSync(join(mnt, 'filler'), Buffer.alloc(statfsSync(mnt).bavail * statfsSync(mnt).bsize - 100 * 1024));
    const config = { ...loadConfig({}, {}), redisUrl: TEST_REDIS_URL, prefix, blobDir: 's3://store/blobs', outDir: join(root, 'out'), cacheDir: cache, s3ForcePathStyle: true, s3MaxAttempts: 1, logLevel: 'silent' as const };
    const err = (await enqueueFiles([z!], config, silentLogger()).catch((e: unknown) => e)) as DocbatchError;
    expect(err).toBeInstanceOf(DocbatchError);
    expect(err.describe()).toMatch(new RegExp(`^BLOB_STORE_UNWRITABLE: cannot write into the blob store BLOB_DIR s3://store/blobs \\(its temporaries in CACHE_DIR ${cache}\\): ENOSPC: .*set CACHE_DIR to a folder with room`));
    expect(files(cache).filter((f) => f.startsWith('tmp/'))).toEqual([]);
  } finally {
    restore();
    await s3.close();
  }
}, 120_000);
