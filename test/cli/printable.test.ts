/**
 * What docbatch prints cannot be turned against the terminal: control characters, bidi
 * overrides and other invisible characters in file names and export ids are escaped in every
 * line the CLI prints (enqueue outcomes, rejected files' places, status), and `--json` lines
 * carry them as JSON escapes, parsing back to exactly the original strings. Real files with such
 * names, real child processes, real Redis.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DocbatchError } from '../../src/errors.ts';
import { cutText, jsonLine, printable } from '../../src/printable.ts';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { runCli } from '../helpers/cli.ts';
import { startPipeline, type Pipeline } from '../helpers/pipeline.ts';

/** Anything a terminal would act on or hide: C0/C1 controls, DEL, separators, bidi and other format characters (a ZWJ aside). */
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u00ad\u061c\u200b\u200c\u200e\u200f\u2028-\u202e\u2060-\u2069\ufeff]/u;

describe('printable', () => {
  it('escapes controls, separators, bidi and invisible format characters, and nothing else', () => {
    expect(printable('invoice\u202Efdp.exe')).toBe('invoice\\u202efdp.exe');
    expect(printable('a\x1b[2Jb\x07\x00\x7f\x85')).toBe('a\\x1b[2Jb\\x07\\x00\\x7f\\x85');
    expect(printable('one\ntwo\r\tthree')).toBe('one\\ntwo\\r\\tthree');
    expect(printable('\u2028\u2029\u200b\u200e\u2066\u00ad\ufeff\u{e0041}\ud800')).toBe('\\u2028\\u2029\\u200b\\u200e\\u2066\\xad\\ufeff\\u{e0041}\\ud800');
    // Ordinary text, accents, CJK, emoji and emoji joined by ZWJ stay as they are.
    for (const ok of ['résumé 日本語 🚀', '👩\u200d💻 family 👨\u200d👩\u200d👧', 'C:\\path\\x.pdf', 'tab-free']) expect(printable(ok)).toBe(ok);
    expect(printable('a\u200db')).toBe('a\\u200db');
  });

  it('--json lines: the same characters as JSON escapes, parsing back to the original', () => {
    const value = { file: 'x\u202e\x1b\n\u2028\u{e0041}y 👩\u200d💻', n: 1 };
    const line = jsonLine(value);
    expect(line).not.toMatch(RAW);
    expect(line).toContain('x\\u202e\\u001b\\n\\u2028\\udb40\\udc41y');
    expect(JSON.parse(line)).toEqual(value);
  });

  it('error places and messages print as one escaped line', () => {
    const err = new DocbatchError('EXPORT_SCHEMA', 'bad value "\x1b]0;pwned\x07"', { place: { file: 'a\nb.json', conversation: '#0 (id \u202eevil)', field: 'mapping.\x1b[31m.message' } });
    expect(err.describe()).toBe('a\\nb.json: conversation #0 (id \\u202eevil): field mapping.\\x1b[31m.message: EXPORT_SCHEMA: bad value "\\x1b]0;pwned\\x07"');
  });
});

describe('the CLI prints file names and export ids escaped', () => {
  let p: Pipeline;
  let env: Record<string, string>;
  const file = (name: string, data: string | Buffer) => {
    const path = join(p.dir, name);
    writeFileSync(path, data);
    return path;
  };
  beforeAll(async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false });
    env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, LOG_FORMAT: 'json' };
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('enqueue: outcome lines, rejected lines and their places; --json; status', async () => {
    const reversed = file('invoice\u202Efdp.pdf', numberedPdf(2, 41));
    const escape = file('esc\x1b[2Jname.txt', 'just text\n');
    const newline = file('forged\ndocbatch: all good.txt', 'just text\n');
    // A JSONL export whose conversation id hides a bidi override and a terminal title sequence, with a bad field.
    const badId = 'conv\u202e\x1b]0;pwned\x07';
    const jsonl = file('chats.jsonl', `${JSON.stringify({ id: badId, messages: [{ role: 7, content: 'hi' }] })}\n`);

    const r = await runCli(['enqueue', reversed, escape, newline, jsonl], env);
    expect(r.code).toBe(2);
    expect(r.stdout).not.toMatch(RAW);
    expect(r.stderr).not.toMatch(RAW);
    expect(r.stdout).toMatch(/enqueued\s+\S+invoice\\u202efdp\.pdf\s+2 pages/);
    const lines = r.stderr.trim().split('\n');
    expect(lines.every((l) => l.startsWith('docbatch: rejected '))).toBe(true);
    expect(lines).toHaveLength(3);
    expect(r.stderr).toContain('esc\\x1b[2Jname.txt: UNSUPPORTED_FORMAT');
    expect(r.stderr).toContain('forged\\ndocbatch: all good.txt: UNSUPPORTED_FORMAT');
    expect(r.stderr).toMatch(/chats\.jsonl: line 1: byte 0: conversation id conv\\u202e\\x1b\]0;pwned\\x07: field messages\[0\]\.role: EXPORT_SCHEMA/);

    const j = await runCli(['enqueue', '--json', reversed, escape, jsonl], env);
    expect(j.stdout).not.toMatch(RAW);
    const objects = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as { file: string; error?: { place: { conversation?: string } } });
    expect(objects.map((o) => o.file).sort()).toEqual([reversed, escape, jsonl].sort());
    expect(objects.find((o) => o.file === jsonl)?.error?.place.conversation).toBe(`id ${badId}`);

    const status = await runCli(['status'], env);
    expect(status.code).toBe(0);
    expect(status.stdout).not.toMatch(RAW);
    // The output name itself drops invisible characters (src/ingest/prepare.ts baseNameOf).
    expect(status.stdout).toContain('invoice_fdp');
    const statusJson = await runCli(['status', '--json'], env);
    expect(statusJson.stdout).not.toMatch(RAW);
    expect(statusJson.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { source?: string }).some((o) => o.source === reversed)).toBe(true);
  }, 60_000);
});

describe('cutText', () => {
  it('keeps short text, cuts long text to the limit ending in …, never inside a surrogate pair', () => {
    expect(cutText('abc', 3)).toBe('abc');
    expect(cutText('abcdef', 4)).toBe('abc…');
    // '🧪' is two UTF-16 units: a cut between them would leave a lone high surrogate.
    const cut = cutText(`ab🧪cd`, 4);
    expect(cut).toBe('ab…');
    expect(/[\ud800-\udfff]/u.test(cut.replace(/\p{Extended_Pictographic}/gu, ''))).toBe(false);
    expect(cutText(`a🧪cd`, 4)).toBe('a🧪…');
  });
});
