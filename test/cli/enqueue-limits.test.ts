/**
 * `docbatch enqueue` given decompression bombs and a runaway export beside a good export, as a
 * user runs it (a real child process, real Redis): each bad file is refused with its code within
 * seconds and nothing of it is queued; the good file of the same command still goes in whole.
 * The bombs are generated here (test/ingest/chat/fixtures.ts), never committed.
 */
import { closeSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openQueue } from '../../queues/connect.ts';
import { runCli } from '../helpers/cli.ts';
import { startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { bombZip, ChatgptTree } from '../ingest/chat/fixtures.ts';
import { pageTreeBombPdf } from '../render/fixtures.ts';

function conversation(id: string, text: string): Record<string, unknown> {
  const t = new ChatgptTree();
  const leaf = t.chain(t.rootId, [text, `${text} back`]).at(-1) as string;
  return t.build({ id, current_node: leaf });
}

describe('docbatch enqueue: bombs and runaway exports', () => {
  let p: Pipeline;
  let env: Record<string, string>;
  beforeAll(async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false });
    env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, LOG_FORMAT: 'json' };
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('refuses each within seconds with its code; the good export still goes in', async () => {
    const file = (name: string, data: Buffer | string) => {
      const path = join(p.dir, name);
      writeFileSync(path, data);
      return path;
    };
    const run = 'a'.repeat(4_000_000); // deflates about 1000:1
    const bomb = file('bomb.zip', bombZip({ conversation: conversation('bomb', run), inflatedBytes: 1 << 30 }));
    const liar = file('liar.zip', bombZip({ conversation: conversation('liar', run), inflatedBytes: 1 << 30, declaredBytes: 1 << 20 }));
    const many = file('many.json', JSON.stringify(Array.from({ length: 60 }, (_, k) => conversation(`m${k}`, `hello ${k}`))));
    const good = file('good.json', JSON.stringify([conversation('g1', 'first'), conversation('g2', 'second'), conversation('g3', 'third')]));

    const started = performance.now();
    const r = await runCli(['enqueue', bomb, liar, many, good], { ...env, EXPORT_MAX_CHUNKS: '50' }, { timeoutMs: 60_000 });
    const seconds = (performance.now() - started) / 1000;
    expect(r.code).toBe(2);
    expect(seconds).toBeLessThan(30);
    const line = (name: string) => r.stderr.split('\n').find((l) => l.startsWith('docbatch: rejected') && l.includes(name)) ?? '';
    expect(line('bomb.zip')).toMatch(/ZIP_TOO_LARGE: conversations\.json inflates to \d+ bytes, \d+ times its compressed size/);
    expect(line('liar.zip')).toMatch(/ZIP_TOO_LARGE: conversations\.json inflates to more than the 1048576 bytes its zip header declares/);
    expect(line('many.json')).toMatch(/conversation #50 \(id m50\): EXPORT_TOO_MANY_CHUNKS: .*EXPORT_MAX_CHUNKS \(50\)/);
    expect(r.stdout).toMatch(/enqueued\s+.*good\.json\s+3 chunks/);
    expect(r.stdout).not.toMatch(/bomb|liar|many/);

    // Only the good export's chunks are queued, and only it has a document record.
    const infer = openQueue('infer', p.config, p.redis);
    expect(await infer.getWaitingCount()).toBe(3);
    await infer.close();
    expect(await p.store.list(100)).toHaveLength(1);
  }, 120_000);

  it('a page-tree bomb and a PDF over INPUT_MAX_PAGES are refused at once (PDF_TOO_MANY_PAGES); the PDF at the bound goes in', async () => {
    const file = (name: string, data: Buffer) => {
      const path = join(p.dir, name);
      writeFileSync(path, data);
      return path;
    };
    const bomb = file('tree-bomb.pdf', pageTreeBombPdf(4, 32)); // 1,048,576 pages in ~1.4 KB
    const four = file('four.pdf', pageTreeBombPdf(1, 4));
    const three = file('three.pdf', pageTreeBombPdf(1, 3));
    const before = (await p.store.list(100)).length;
    const started = performance.now();
    const r = await runCli(['enqueue', bomb, four, three], { ...env, INPUT_MAX_PAGES: '3' }, { timeoutMs: 60_000 });
    expect((performance.now() - started) / 1000).toBeLessThan(20);
    expect(r.code).toBe(2);
    const line = (name: string) => r.stderr.split('\n').find((l) => l.startsWith('docbatch: rejected') && l.includes(name)) ?? '';
    expect(line('tree-bomb.pdf')).toMatch(/PDF_TOO_MANY_PAGES: the page tree claims 1048576 pages in \d+ bytes, more than INPUT_MAX_PAGES \(3\)/);
    expect(line('four.pdf')).toMatch(/PDF_TOO_MANY_PAGES: the page tree claims 4 pages/);
    expect(r.stdout).toMatch(/enqueued\s+.*three\.pdf\s+3 pages/);
    expect(await p.store.list(100)).toHaveLength(before + 1);
  }, 60_000);

  it('CHUNK_OVERLAP_TOKENS not below CHUNK_TOKENS: CONFIG_INVALID naming both, exit 2, nothing queued (was an unexpected TypeError after the files before it went in)', async () => {
    const path = join(p.dir, 'overlap.json');
    writeFileSync(path, JSON.stringify([conversation('o1', 'first')]));
    const before = (await p.store.list(100)).length;
    const r = await runCli(['enqueue', '--chunk-tokens', '100', path], { ...env, CHUNK_OVERLAP_TOKENS: '100' }, { timeoutMs: 60_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('CONFIG_INVALID: setting CHUNK_OVERLAP_TOKENS from environment CHUNK_OVERLAP_TOKENS = 100 is invalid: it must be less than CHUNK_TOKENS (100, from flag --chunk-tokens)');
    expect(r.stderr).not.toMatch(/unexpected error|TypeError/);
    expect(await p.store.list(100)).toHaveLength(before);
  }, 60_000);

  it('an export past V8\'s longest string (600 MiB) streams: a bad byte at its end is named by line and byte; fixed, it goes in', async () => {
    // 600 lines of 1 MiB of spaces between two conversations (written in about a second): read
    // as one string, the file would be ERR_STRING_TOO_LONG, not an error about the file.
    const path = join(p.dir, 'huge.jsonl');
    const fd = openSync(path, 'w');
    const first = '{"id":"a","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n';
    writeSync(fd, first);
    const pad = Buffer.alloc(1 << 20, ' ');
    pad[pad.length - 1] = 0x0a;
    for (let i = 0; i < 600; i++) writeSync(fd, pad);
    const head = '{"id":"b","messages":[{"role":"user","content":"caf';
    const at = Buffer.byteLength(first) + 600 * pad.length + head.length;
    expect(at).toBeGreaterThan(2 ** 29);
    writeSync(fd, Buffer.concat([Buffer.from(head), Buffer.from([0xc3, 0x28]), Buffer.from('"}]}\n')]));
    closeSync(fd);
    try {
      const bad = await runCli(['enqueue', path], env, { timeoutMs: 60_000 });
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim()).toBe(`docbatch: rejected ${path}: line 602: byte ${at}: EXPORT_BAD_UTF8: invalid UTF-8 (byte 0xc3)`);
      // The byte mended (é): both conversations go in.
      const mend = openSync(path, 'r+');
      writeSync(mend, Buffer.from([0xc3, 0xa9]), 0, 2, at);
      closeSync(mend);
      const good = await runCli(['enqueue', '--json', path], env, { timeoutMs: 60_000 });
      expect(good.stderr).toBe('');
      expect(good.code).toBe(0);
      expect(JSON.parse(good.stdout.trim())).toMatchObject({ outcome: 'enqueued', kind: 'chat', units: 2 });
    } finally {
      rmSync(path, { force: true });
    }
  }, 90_000);
});
