/**
 * `docbatch enqueue` as a user runs it: bad inputs of every kind get their own code, their place
 * and exit code 2, and the good files of the same command still go in; --wait exits 0 when all
 * finished and 1 when a unit failed; bad settings name the setting.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runCli } from '../helpers/cli.ts';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { generateTiff } from '../../bench/lib/tiff-gen.ts';
import { openQueue } from '../../queues/connect.ts';
import { startPipeline, type Pipeline } from '../helpers/pipeline.ts';



describe('docbatch enqueue', () => {
  let p: Pipeline;
  let env: Record<string, string>;
  beforeAll(async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false });
    env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, LOG_FORMAT: 'json' };
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('rejects each bad file with its own code and place, exit 2, and still enqueues the good ones', async () => {
    const f = (name: string, data: string | Buffer) => {
      const path = join(p.dir, name);
      writeFileSync(path, data);
      return path;
    };
    const good = f('good.pdf', numberedPdf(3));
    const real = numberedPdf(3);
    // A 4-page TIFF whose page 2 points past the end of the file (a file cut short: pages lost).
    const tiff = generateTiff({ pages: 4 });
    const cut = Buffer.from(tiff.bytes);
    cut.writeUInt32LE(tiff.bytes.length + 1000, (tiff.directories[1] as number) + 2 + 9 * 12);
    const files = {
      empty: f('empty.pdf', ''),
      png: f('picture.pdf', await sharp({ create: { width: 8, height: 8, channels: 3, background: '#fff' } }).png().toBuffer()),
      truncated: f('truncated.pdf', real.subarray(0, 40)),
      text: f('notes.txt', 'just some notes\n'),
      // A good first conversation, then a broken one: the whole file is rejected.
      badJson: f('conversations.json', `[${JSON.stringify(JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'samples', 'conversations.json'), 'utf8'))[0])},\n {"title": oops}]`),
      badUtf8: f('utf8.json', Buffer.concat([Buffer.from('[{"title":"'), Buffer.from([0xff, 0xfe]), Buffer.from('","mapping":{},"current_node":null}]')])),
      tiff: f('scan.tiff', cut),
      schema: f('schema.json', JSON.stringify([{ id: 'c1', title: 'x', current_node: 'n1', mapping: { n1: { id: 'n1', parent: null, children: [], message: { id: 'n1', author: { role: 'user' }, content: { content_type: 'text', parts: 'not a list' } } } } }])),
    };
    const r = await runCli(['enqueue', good, ...Object.values(files)], env);
    expect(r.code).toBe(2);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('docbatch: rejected'));
    const codeOf = (name: string) => lines.find((l) => l.includes(name))?.match(/\b([A-Z][A-Z0-9_]{3,})\b:/)?.[1];
    expect(codeOf('empty.pdf')).toBe('EMPTY_FILE');
    expect(codeOf('picture.pdf')).toBe('NOT_PDF');
    expect(codeOf('truncated.pdf')).toBe('PDF_CORRUPT');
    expect(codeOf('notes.txt')).toBe('UNSUPPORTED_FORMAT');
    expect(codeOf('conversations.json')).toBe('EXPORT_BAD_JSON');
    expect(codeOf('utf8.json')).toBe('EXPORT_BAD_UTF8');
    expect(codeOf('schema.json')).toBe('EXPORT_SCHEMA');
    expect(lines.find((l) => l.includes('conversations.json'))).toMatch(/byte \d+|line \d+/);
    expect(lines.find((l) => l.includes('utf8.json'))).toMatch(/byte \d+/);
    expect(lines.find((l) => l.includes('schema.json'))).toMatch(/parts/);
    expect(codeOf('scan.tiff')).toBe('IMAGE_CORRUPT');
    expect(lines.find((l) => l.includes('scan.tiff'))).toMatch(/page 3\b.*byte \d+.*lies outside the file/);
    // The good file went in whole.
    expect(r.stdout).toMatch(/enqueued\s+.*good\.pdf\s+3 pages/);
    const infer = openQueue('infer', p.config, p.redis);
    expect(await infer.getWaitingCount()).toBe(3);
    await infer.close();
  }, 60_000);

  it('--json prints one object per file', async () => {
    const path = join(p.dir, 'json-mode.pdf');
    writeFileSync(path, numberedPdf(2, 5));
    const r = await runCli(['enqueue', '--json', path, join(p.dir, 'missing.pdf')], env);
    expect(r.code).toBe(2);
    const objects = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(objects).toContainEqual(expect.objectContaining({ kind: 'pdf', units: 2, outcome: 'enqueued' }));
    expect(objects).toContainEqual(expect.objectContaining({ error: expect.objectContaining({ code: 'FILE_UNREADABLE' }) }));
  });

  it('--wait exits 0 when all finished, 1 when a unit failed', async () => {
    await p.startWorker();
    const ok = join(p.dir, 'fine.pdf');
    writeFileSync(ok, numberedPdf(2, 7));
    const r = await runCli(['enqueue', '--wait', ok], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/written.*2\/2 done/);
    expect(readFileSync(join(p.config.outDir, 'fine.md'), 'utf8')).toContain('<!-- page 2 -->');

    p.engine.setFaults({ oomAtConcurrentImages: 0, oomMode: 'request' });
    const doomed = join(p.dir, 'doomed.pdf');
    writeFileSync(doomed, numberedPdf(1, 9));
    const f = await runCli(['enqueue', '--wait', doomed], env);
    p.engine.setFaults({ oomAtConcurrentImages: null });
    expect(f.code).toBe(1);
    expect(f.stdout).toMatch(/1 FAILED/);
  }, 90_000);

  it('a bad setting names the setting and exits 2; an unknown flag exits 2', async () => {
    const bad = await runCli(['worker'], { ...env, BATCH_SIZE: 'lots' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/BATCH_SIZE/);
    const flag = await runCli(['enqueue', '--no-such-flag', 'x.pdf'], env);
    expect(flag.code).toBe(2);
    const url = await runCli(['status'], { ...env, REDIS_URL: 'http://nope' });
    expect(url.code).toBe(2);
    expect(url.stderr).toMatch(/REDIS_URL/);
  });

  it('--wait stopped by SIGTERM says ABORTED (exit 1), not an unexpected error; the document stays queued', async () => {
    const file = join(p.dir, 'stopped.pdf');
    writeFileSync(file, numberedPdf(2, 77));
    const child = spawn(BIN, ['enqueue', '--wait', file], { env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    for (let i = 0; i < 400 && !stdout.includes('enqueued'); i++) await new Promise((r) => setTimeout(r, 25));
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(stderr).not.toMatch(/unexpected error/);
    expect(stderr).toMatch(/ABORTED: interrupted \(SIGTERM\)/);
    expect(code).toBe(1);
    const docId = stdout.split(/\s+/)[0]!;
    // Not cancelled: the worker an earlier test started goes on with it (it may be done already).
    expect(['running', 'complete', 'written']).toContain((await p.store.get(docId))!.state);
  }, 60_000);
});
