/**
 * Outputs on S3 (src/write/sink-s3.ts) against a real S3-protocol server (s3rver): the same
 * bytes under the same relative paths, one PUT for small outputs and a multipart upload for
 * large ones, nothing left behind by a write that fails part-way, keys contained under the
 * prefix, and a missing bucket named at the writer's start. Whether written outputs are still
 * there (what `enqueue` asks of a written document), for S3 and for a folder: yes, no, or cannot
 * be told from here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DocbatchError } from '../../src/errors.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalSink, PermanentWriteError } from '../../src/write/atomic.ts';
import { S3Sink } from '../../src/write/sink-s3.ts';
import { flakyProxy, startS3Server, testClient, type FlakyProxy, type S3Server } from '../helpers/s3.ts';

let s3: S3Server;
let proxy: FlakyProxy;

beforeAll(async () => {
  s3 = await startS3Server(['outputs']);
  proxy = await flakyProxy(s3.endpoint);
});
afterAll(async () => {
  await proxy.close();
  await s3.close();
});

const sink = (prefix = 'run/out', bucket = 'outputs') => new S3Sink(testClient(proxy.endpoint), { bucket, prefix }, { partSizeBytes: 5 * 1024 * 1024 });

describe('S3Sink', () => {
  it('writes whole outputs under the prefix, and says where they are as s3:// URIs', async () => {
    const out = sink();
    expect(await out.writeWhole('book.md', '<!-- page 1 -->\nHello\n')).toBe('s3://outputs/run/out/book.md');
    expect(await out.writeStream('model-a/chat.jsonl', async (write) => {
      for (let i = 0; i < 1000; i++) await write(`${JSON.stringify({ chunk: i, summary: 'é'.repeat(i % 7) })}\n`);
    })).toBe('s3://outputs/run/out/model-a/chat.jsonl');
    expect((await s3.get('outputs', 'run/out/book.md'))?.toString()).toBe('<!-- page 1 -->\nHello\n');
    const lines = (await s3.get('outputs', 'run/out/model-a/chat.jsonl'))!.toString().trim().split('\n');
    expect(lines).toHaveLength(1000);
    expect(JSON.parse(lines[999]!)).toEqual({ chunk: 999, summary: 'é'.repeat(999 % 7) });
    expect(out.locationOf('x.report.json')).toBe('s3://outputs/run/out/x.report.json');
    expect(await out.exists('s3://outputs/run/out/book.md')).toBe(true);
    expect(await out.exists('s3://outputs/run/out/none.md')).toBe(false);
    expect(sink('').locationOf('x.md')).toBe('s3://outputs/x.md');
    // An output a new run supersedes without writing it again goes; one that is not there is no error.
    await out.remove('book.md');
    expect(await out.exists('s3://outputs/run/out/book.md')).toBe(false);
    await out.remove('book.md');
    await expect(out.remove('../elsewhere.md')).rejects.toThrow(/outside OUT_DIR/);
  });

  it('a large output goes up as a multipart upload, byte for byte', async () => {
    const before = proxy.stats().requests;
    const line = `${'x'.repeat(1023)}\n`;
    const total = 12 * 1024; // 12 MiB in 1 KiB lines: three parts of 5 MiB at most
    await sink().writeStream('big.jsonl', async (write) => {
      for (let i = 0; i < total; i++) await write(line);
    });
    const after = proxy.stats().requests;
    // CreateMultipartUpload and CompleteMultipartUpload are POSTs; each part a PUT.
    expect((after.POST ?? 0) - (before.POST ?? 0)).toBe(2);
    expect((after.PUT ?? 0) - (before.PUT ?? 0)).toBe(3);
    const body = await s3.get('outputs', 'run/out/big.jsonl');
    expect(body!.length).toBe(total * 1024);
    expect(body!.equals(Buffer.from(line.repeat(total)))).toBe(true);
  });

  it('a write that fails part-way leaves nothing under its key (small and multipart)', async () => {
    for (const [name, lines] of [['small.md', 10], ['large.md', 8 * 1024]] as const) {
      await expect(sink().writeStream(name, async (write) => {
        for (let i = 0; i < lines; i++) await write(`${'y'.repeat(1023)}\n`);
        throw new Error('the results ran out');
      })).rejects.toThrow('the results ran out');
      expect(await s3.get('outputs', `run/out/${name}`)).toBeNull();
    }
  });

  it('keys stay under the prefix: absolute paths, "..", empty parts are refused for good', async () => {
    for (const bad of ['/etc/passwd', '../escape.md', 'a/../../b.md', 'a//b.md', './x.md', 'a\\b.md', '']) {
      await expect(sink().writeWhole(bad, 'x'), bad).rejects.toBeInstanceOf(PermanentWriteError);
    }
    expect(await s3.keys('outputs', 'run/')).not.toContain('escape.md');
    expect(await s3.keys('outputs')).not.toContain('escape.md');
  });

  it('reach() names a missing bucket; credentials refused are named too', async () => {
    const missing = await sink('out', 'no-such-bucket').reach().catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(DocbatchError);
    expect((missing as Error).message).toMatch(/bucket no-such-bucket does not exist/);
    const denied = await new S3Sink(testClient(s3.endpoint, { key: 'WRONG', maxAttempts: 1 }), { bucket: 'outputs', prefix: '' }).reach().catch((e: unknown) => e);
    expect((denied as Error).message).toMatch(/access denied/);
  });
});

describe('outputsPresent (enqueueing a written document again)', () => {
  it('S3: true while all are there, false once one is gone, null outside OUT_DIR or when the store does not answer', async () => {
    const out = sink('present/out');
    const files = [await out.writeWhole('a.md', 'a'), await out.writeWhole('a.report.json', '{}')];
    expect(await out.outputsPresent(files)).toBe(true);
    expect(await out.outputsPresent([...files, 's3://outputs/present/out/gone.md'])).toBe(false);
    expect(await out.outputsPresent([])).toBe(false);
    // Written under another OUT_DIR (another bucket or prefix, a folder): not this sink's to check.
    expect(await out.outputsPresent(['s3://outputs/elsewhere/a.md'])).toBeNull();
    expect(await out.outputsPresent(['s3://other-bucket/present/out/a.md'])).toBeNull();
    expect(await out.outputsPresent(['/srv/out/a.md'])).toBeNull();
    proxy.outage({ status: 403, code: 'AccessDenied' });
    try {
      expect(await out.outputsPresent(files)).toBeNull();
    } finally {
      proxy.outage(null);
    }
  });

  it('a folder: true, false, and null outside it or when it does not exist on this machine', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'docbatch-present-'));
    try {
      const out = new LocalSink(join(dir, 'out'));
      const files = [await out.writeWhole('sub/b.md', 'b'), await out.writeWhole('sub/b.report.json', '{}')];
      expect(await out.outputsPresent(files)).toBe(true);
      await rm(files[0]!);
      expect(await out.outputsPresent(files)).toBe(false);
      expect(await out.outputsPresent([join(dir, 'other', 'b.md')])).toBeNull();
      expect(await out.outputsPresent(['s3://outputs/run/out/b.md'])).toBeNull();
      // The same path, but the folder is not on this machine (the writer's disk is elsewhere).
      const absent = new LocalSink(join(dir, 'not-here'));
      expect(await absent.outputsPresent([join(dir, 'not-here', 'b.md')])).toBeNull();
      await writeFile(join(dir, 'a-file'), 'x');
      expect(await new LocalSink(join(dir, 'a-file')).outputsPresent([join(dir, 'a-file', 'b.md')])).toBeNull();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
