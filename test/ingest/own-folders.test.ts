/**
 * docbatch's own folders (src/store/locations.ts), with real files, a real pipeline (Redis, the
 * engine emulator, worker and writer) and a real S3 server (s3rver):
 * - `enqueue .` run again where BLOB_DIR and OUT_DIR sit inside `.` (the defaults, ./data/blobs
 *   and ./out, do): it walked the blob store and enqueued each stored PDF again under its hash
 *   name (a run of its own under another task). Now both are skipped, listed once each.
 *   CACHE_DIR (a worker's copies of blobs stored on s3://) is skipped the same way.
 * - An input named inside BLOB_DIR (a blob, the store, a link to it) or CACHE_DIR is refused:
 *   INPUT_OWN_FOLDER.
 * - BLOB_DIR and OUT_DIR overlapping (same folder, one inside the other, through a link, or the
 *   same s3:// prefix) is refused before anything is read: LOCATIONS_OVERLAP naming both.
 * - An s3:// input prefix holding OUT_DIR's or BLOB_DIR's prefix skips them the same way.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import type { FileOutcome } from '../../src/ingest/batch.ts';
import { walkS3 } from '../../src/ingest/s3-input.ts';
import { walkInputs } from '../../src/ingest/walk.ts';
import { checkLocations, ownFolders } from '../../src/store/locations.ts';
import { runCli } from '../helpers/cli.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { startS3Server, type S3Server } from '../helpers/s3.ts';

const root = mkdtempSync(join(tmpdir(), 'docbatch-own-folders-'));
const project = join(root, 'project');
const blobs = join(project, 'data', 'blobs');
const out = join(project, 'out');
const cache = join(project, 'cache');
let p: Pipeline;
let s3: S3Server;

beforeAll(async () => {
  mkdirSync(project, { recursive: true });
  // A worker's cache of blobs stored on s3:// (CACHE_DIR/blobs/<sha>): copies of inputs too.
  mkdirSync(join(cache, 'blobs'), { recursive: true });
  writeFileSync(join(cache, 'blobs', 'c'.repeat(64)), numberedPdf(1, 7));
  p = await startPipeline({ file: import.meta.filename, config: { blobDir: blobs, outDir: out, cacheDir: cache } });
  s3 = await startS3Server(['bkt']);
});
afterAll(async () => {
  await p?.stop();
  await s3?.close();
  rmSync(root, { recursive: true, force: true });
});

function byFile(outcomes: FileOutcome[]): Record<string, string> {
  return Object.fromEntries(outcomes.map((o) => [o.file.slice(project.length + 1) || '.', o.error ? `error ${o.error.code}` : o.skipped !== undefined ? `skipped: ${o.skipped}` : o.runs![0]!.outcome]));
}

describe('a folder that holds BLOB_DIR and OUT_DIR', () => {
  it('enqueued again once written: the PDF is done, the blob store and the outputs are skipped (listed once), nothing else is enqueued', async () => {
    writeFileSync(join(project, 'a.pdf'), numberedPdf(2));
    const first = await p.enqueue([project]);
    const storeSkipped = `skipped: docbatch's blob store (BLOB_DIR ${blobs}): stored copies of inputs, not inputs; not walked`;
    const cacheSkipped = `skipped: docbatch's cache (CACHE_DIR ${cache}): copies of stored inputs, not inputs; not walked`;
    expect(byFile(first)).toEqual({ 'a.pdf': 'enqueued', cache: cacheSkipped, 'data/blobs': storeSkipped });
    const [d] = await p.wait(acceptedIds(first), 60_000);
    expect(d!.record.state).toBe('written');
    expect(readdirSync(out).sort()).toEqual(['a.md', 'a.report.json']);

    expect(byFile(await p.enqueue([project]))).toEqual({
      'a.pdf': 'done',
      cache: cacheSkipped,
      'data/blobs': storeSkipped,
      out: `skipped: docbatch's output folder (OUT_DIR ${out}): its outputs are not inputs; not walked`,
    });
  }, 90_000);

  it('an input named inside BLOB_DIR (a blob, the store itself, a link to it) is refused; one named inside OUT_DIR is read', async () => {
    const shard = readdirSync(blobs).find((n) => /^[0-9a-f]{2}$/.test(n))!;
    const blob = join(blobs, shard, readdirSync(join(blobs, shard))[0]!);
    symlinkSync(blobs, join(root, 'store-link'));
    const cached = join(cache, 'blobs', 'c'.repeat(64));
    const outcomes = await p.enqueue([blob, blobs, join(root, 'store-link'), cached, join(out, 'a.md')]);
    expect(outcomes.map((o) => [o.file, o.error?.code])).toEqual([
      [blob, 'INPUT_OWN_FOLDER'],
      [blobs, 'INPUT_OWN_FOLDER'],
      [join(root, 'store-link'), 'INPUT_OWN_FOLDER'],
      [cached, 'INPUT_OWN_FOLDER'],
      [join(out, 'a.md'), 'UNSUPPORTED_FORMAT'], // read, and no document
    ]);
    expect(outcomes[0]!.error!.describe()).toBe(`${blob}: INPUT_OWN_FOLDER: this is inside docbatch's blob store (BLOB_DIR ${blobs}): stored copies of inputs, not inputs: enqueue the original files instead`);
  });
});

describe('BLOB_DIR and OUT_DIR overlapping', () => {
  it('the same folder, OUT_DIR inside BLOB_DIR, or through a link: LOCATIONS_OVERLAP naming both; BLOB_DIR inside OUT_DIR is allowed', () => {
    const a = join(root, 'x');
    expect(() => checkLocations({ blobDir: a, outDir: a })).toThrow(`BLOB_DIR ${a} and OUT_DIR ${a} are the same folder: give them two separate folders`);
    expect(() => checkLocations({ blobDir: a, outDir: join(a, 'tmp') })).toThrow(`BLOB_DIR ${a} and OUT_DIR ${join(a, 'tmp')} overlap: OUT_DIR is inside BLOB_DIR`);
    // BLOB_DIR inside OUT_DIR is a setup people have (OUT_DIR=. and the default ./data/blobs): allowed.
    expect(() => checkLocations({ blobDir: join(a, 'data', 'blobs'), outDir: a })).not.toThrow();
    expect(() => checkLocations({ blobDir: 's3://bkt/out/blobs', outDir: 's3://bkt/out' })).not.toThrow();
    mkdirSync(join(root, 'real-store'));
    symlinkSync(join(root, 'real-store'), join(root, 'linked-out'));
    expect(() => checkLocations({ blobDir: join(root, 'real-store'), outDir: join(root, 'linked-out', 'results') })).toThrow(`OUT_DIR ${join(root, 'linked-out', 'results')} (${join(root, 'real-store', 'results')}) overlap: OUT_DIR is inside BLOB_DIR`);
    expect(() => checkLocations({ blobDir: join(root, 'blobs'), outDir: join(root, 'blobs-out') })).not.toThrow();
    expect(() => checkLocations({ blobDir: 's3://bkt/docbatch', outDir: 's3://bkt/docbatch/out' })).toThrow(/BLOB_DIR s3:\/\/bkt\/docbatch and OUT_DIR s3:\/\/bkt\/docbatch\/out overlap: OUT_DIR is inside BLOB_DIR/);
    expect(() => checkLocations({ blobDir: 's3://bkt', outDir: 's3://bkt/out' })).toThrow(/OUT_DIR is inside BLOB_DIR/);
    expect(() => checkLocations({ blobDir: 's3://bkt/out', outDir: 's3://bkt/output' })).not.toThrow(); // keys out/... and output/...
    expect(() => checkLocations({ blobDir: 's3://bkt/blobs', outDir: 's3://other/blobs' })).not.toThrow();
    expect(() => checkLocations({ blobDir: join(root, 'bkt'), outDir: 's3://bkt' })).not.toThrow();
  });

  it('enqueue, writer and gc refuse to start (exit 2), before anything is written', async () => {
    const store = join(root, 'cli-store');
    const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: store, OUT_DIR: join(store, 'tmp') };
    writeFileSync(join(root, 'b.pdf'), numberedPdf(1));
    for (const args of [['enqueue', join(root, 'b.pdf')], ['writer'], ['gc']]) {
      const r = await runCli(args, env, { timeoutMs: 30_000 });
      expect([r.code, r.stderr], args[0]).toEqual([2, `docbatch: LOCATIONS_OVERLAP: BLOB_DIR ${store} and OUT_DIR ${join(store, 'tmp')} overlap: OUT_DIR is inside BLOB_DIR: give them two separate folders (e.g. OUT_DIR ./out and BLOB_DIR ./data/blobs). BLOB_DIR holds copies of every input and its temporaries are collected by \`docbatch gc\`; OUT_DIR is what is delivered\n`]);
    }
    expect(readdirSync(root)).not.toContain('cli-store');
  }, 90_000);
});

describe('an s3:// input prefix that holds OUT_DIR and BLOB_DIR', () => {
  it('their objects are skipped, each prefix listed once; a prefix that only begins the same is walked', async () => {
    for (const key of ['in/a.pdf', 'in/blobs/ab/abcd', 'in/blobs/.docbatch-store', 'in/out/a.md', 'in/out/a.report.json', 'in/outside/b.pdf']) await s3.put('bkt', key, 'x');
    const own = ownFolders({ blobDir: 's3://bkt/in/blobs', outDir: 's3://bkt/in/out' });
    const walked: string[] = [];
    for await (const o of walkS3('s3://bkt/in/', s3.client, null, undefined, own)) walked.push(o.passed ? `${o.path} (skipped: ${o.passed})` : o.path);
    expect(walked).toEqual([
      's3://bkt/in/a.pdf',
      "s3://bkt/in/blobs (skipped: docbatch's blob store (BLOB_DIR s3://bkt/in/blobs): stored copies of inputs, not inputs; not walked)",
      "s3://bkt/in/out (skipped: docbatch's output folder (OUT_DIR s3://bkt/in/out): its outputs are not inputs; not walked)",
      's3://bkt/in/outside/b.pdf',
    ]);
    // Named inside the s3:// BLOB_DIR: refused as a folder's is; inside OUT_DIR: read.
    const named: Array<[string, string | undefined]> = [];
    for await (const w of walkInputs(['s3://bkt/in/blobs/ab/abcd', 's3://bkt/in/out/a.md'], { s3: () => s3.client, own })) named.push([w.path, w.own]);
    expect(named).toEqual([
      ['s3://bkt/in/blobs/ab/abcd', "this is inside docbatch's blob store (BLOB_DIR s3://bkt/in/blobs): stored copies of inputs, not inputs: enqueue the original files instead"],
      ['s3://bkt/in/out/a.md', undefined],
    ]);
  });
});
