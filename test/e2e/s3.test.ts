/**
 * Nothing shared but Redis and an object store (issue 13): two workers and a writer run as
 * separate `docbatch` processes, each in its own empty folder, with BLOB_DIR and OUT_DIR on a
 * real S3-protocol server (s3rver) and no local blob store. PDFs and chat exports (JSON and .zip)
 * uploaded under s3://docs/in/ go in with `docbatch enqueue s3://docs/in/ --wait` (also from an
 * empty folder) and come out under s3://docs/out/ byte for byte as a local run of the same
 * inputs writes them. Then the start checks: a missing bucket or refused credentials stop the
 * worker (WORKER_UNFIT blobs), the writer and the producer (STORAGE_UNREACHABLE) in one line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { makeZip } from '../ingest/chat/fixtures.ts';
import { BIN, runCli } from '../helpers/cli.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { startS3Server, type S3Server } from '../helpers/s3.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const INPUTS: Record<string, Buffer> = {
  'book.pdf': numberedPdf(12),
  'reports/sample-report.pdf': readFileSync(join(ROOT, 'samples', 'sample-report.pdf')),
  'conversations.json': readFileSync(join(ROOT, 'samples', 'conversations.json')),
  'export.zip': makeZip([{ name: 'conversations.json', data: readFileSync(join(ROOT, 'samples', 'conversations.json')), deflate: true }]),
};
const OUTPUTS = ['book.md', 'sample-report.md', 'conversations.jsonl', 'export.jsonl'];

let s3: S3Server;
let local: Pipeline;
let scratch: string;
const prefix = uniquePrefix(import.meta.filename);
const children: ChildProcess[] = [];

beforeAll(async () => {
  s3 = await startS3Server(['docs']);
  scratch = await mkdtemp(join(tmpdir(), 'docbatch-s3e2e-'));
  local = await startPipeline({ file: import.meta.filename, emulator: { speed: 100, outputTokensMin: 20, outputTokensMax: 60 } });
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await local?.stop();
  await s3?.close();
  await deletePrefix(prefix);
  await rm(scratch, { recursive: true, force: true });
});

/** An empty folder of its own for one process. */
async function folder(name: string): Promise<string> {
  const dir = join(scratch, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Every file under `dir`, relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort();
}

function s3Env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...s3.env,
    REDIS_URL: TEST_REDIS_URL,
    DOCBATCH_PREFIX: prefix,
    BLOB_DIR: 's3://docs/blobs',
    OUT_DIR: 's3://docs/out',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
    ...extra,
  };
}

/** A long-running `docbatch VERB` in `cwd`, resolved once its log says `ready`. */
async function startProcess(args: string[], cwd: string, env: Record<string, string>, ready: string): Promise<{ child: ChildProcess; logs: () => string; exited: Promise<number | null> }> {
  let logs = '';
  const child = spawn(BIN, args, { cwd, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} not ready in 60 s: ${logs}`)), 60_000);
    const look = (d: Buffer) => {
      logs += d.toString();
      if (logs.includes(ready)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${args[0]} exited ${code} before it was ready: ${logs}`));
    });
  });
  return { child, logs: () => logs, exited };
}

describe('nothing shared but Redis and S3', () => {
  it('two workers and a writer, each in an empty folder: inputs from s3://docs/in/ come out under s3://docs/out/ as a local run writes them', async () => {
    // The local run of the same inputs, for the bytes to expect.
    const inputs = join(scratch, 'inputs');
    for (const [name, bytes] of Object.entries(INPUTS)) {
      await mkdir(join(inputs, name, '..'), { recursive: true });
      await writeFile(join(inputs, name), bytes);
    }
    const ids = acceptedIds(await local.enqueue([inputs]));
    expect(ids).toHaveLength(4);
    await local.wait(ids, 120_000);
    const expected = new Map<string, Buffer>();
    for (const name of OUTPUTS) expected.set(name, await readFile(join(local.config.outDir, name)));

    // The S3 run: inputs uploaded, then three processes that share nothing but Redis and S3.
    for (const [name, bytes] of Object.entries(INPUTS)) await s3.put('docs', `in/${name}`, bytes);
    await s3.put('docs', 'in/notes.txt', 'not a document');
    const dirs = { w1: await folder('w1'), w2: await folder('w2'), writer: await folder('writer'), producer: await folder('producer') };
    const engine = { ENGINE_URL: local.engine.url, RENDERERS: '1', BATCH_SIZE: '2', INITIAL_IN_FLIGHT: '2', MAX_IN_FLIGHT: '4' };
    const w1 = await startProcess(['worker', '--name', 'w1'], dirs.w1, s3Env({ ...engine, CACHE_DIR: join(dirs.w1, 'cache') }), 'worker started');
    const w2 = await startProcess(['worker', '--name', 'w2'], dirs.w2, s3Env({ ...engine, CACHE_DIR: join(dirs.w2, 'cache') }), 'worker started');
    const writer = await startProcess(['writer'], dirs.writer, s3Env({ CACHE_DIR: join(dirs.writer, 'cache') }), 'writer started');

    const enqueue = await runCli(['enqueue', 's3://docs/in/', '--wait'], s3Env({ CACHE_DIR: join(dirs.producer, 'cache') }), { cwd: dirs.producer, timeoutMs: 150_000 });
    expect(enqueue.stderr).not.toMatch(/rejected|docbatch:/);
    expect(enqueue.code).toBe(0);
    expect(enqueue.stdout).toContain('skipped  s3://docs/in/notes.txt: not a document');
    for (const name of OUTPUTS) expect(enqueue.stdout).toContain(`s3://docs/out/${name}`);

    for (const name of OUTPUTS) {
      const got = await s3.get('docs', `out/${name}`);
      expect(got, name).not.toBeNull();
      expect(got!.equals(expected.get(name)!), `${name} differs from the local run`).toBe(true);
    }
    for (const name of ['book', 'sample-report', 'conversations', 'export']) {
      const report = JSON.parse((await s3.get('docs', `out/${name}.report.json`))!.toString());
      const localReport = JSON.parse(await readFile(join(local.config.outDir, `${name}.report.json`), 'utf8'));
      expect(report.source).toMatch(new RegExp(`^s3://docs/in/.*${name}\\.(pdf|json|zip)$`));
      expect(report.outputs).toEqual([`s3://docs/out/${name}.${name.includes('conv') || name === 'export' ? 'jsonl' : 'md'}`, `s3://docs/out/${name}.report.json`]);
      for (const field of ['document', 'kind', 'units', 'completed', 'failed', 'prompt_tokens', 'completion_tokens', 'models']) expect(report[field], `${name}: ${field}`).toEqual(localReport[field]);
    }
    // No process left a blob store (or anything but its cache of rendered blobs) behind.
    const blobKeys = await s3.keys('docs', 'blobs/');
    expect(blobKeys).toContain('blobs/.docbatch-store');
    expect(blobKeys.filter((k) => k.startsWith('blobs/named/results/'))).toHaveLength(4);
    for (const [name, dir] of Object.entries(dirs)) {
      for (const file of await filesUnder(dir)) expect(file, `${name} left ${file}`).toMatch(/^cache\/blobs\/[0-9a-f]{64}$/);
    }
    expect((await filesUnder(dirs.w1)).length + (await filesUnder(dirs.w2)).length).toBeGreaterThan(0);

    for (const p of [w1, w2, writer]) p.child.kill('SIGTERM');
    for (const p of [w1, w2, writer]) expect(await p.exited).toBe(0);
  }, 240_000);

  it('a missing bucket or refused credentials: the worker, the writer and the producer stop at start, saying so in one line', async () => {
    const cwd = await folder('refused');
    /** The lines docbatch printed (its logs aside). */
    const said = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('docbatch:'));
    const noBucket = s3Env({ BLOB_DIR: 's3://no-such-bucket/blobs', ENGINE_URL: local.engine.url });
    const worker = await runCli(['worker'], noBucket, { cwd, timeoutMs: 60_000 });
    expect(worker.code).toBe(2);
    expect(said(worker.stderr)).toHaveLength(1);
    expect(said(worker.stderr)[0]).toMatch(/^docbatch: WORKER_UNFIT: blobs: BLOB_DIR s3:\/\/no-such-bucket\/blobs: the bucket no-such-bucket does not exist/);

    const writer = await runCli(['writer'], s3Env({ OUT_DIR: 's3://no-such-bucket/out' }), { cwd, timeoutMs: 60_000 });
    expect(writer.code).toBe(2);
    expect(said(writer.stderr)).toHaveLength(1);
    expect(said(writer.stderr)[0]).toMatch(/^docbatch: STORAGE_UNREACHABLE: writer: OUT_DIR s3:\/\/no-such-bucket\/out: the bucket no-such-bucket does not exist/);

    const badKey = s3Env({ AWS_ACCESS_KEY_ID: 'WRONG', AWS_SECRET_ACCESS_KEY: 'WRONG', S3_MAX_ATTEMPTS: '1' });
    const producer = await runCli(['enqueue', join(ROOT, 'samples', 'sample-report.pdf')], badKey, { cwd, timeoutMs: 60_000 });
    expect(producer.code).toBe(2);
    expect(said(producer.stderr)).toHaveLength(1);
    expect(said(producer.stderr)[0]).toMatch(/^docbatch: STORAGE_UNREACHABLE: enqueue: .*access denied: the credentials are missing, wrong or lack permission/);
    expect(await filesUnder(cwd)).toEqual([]);
  }, 120_000);
});
