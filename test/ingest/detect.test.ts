import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { detectFile } from '../../src/ingest/detect.ts';
import { makeZip, tempDir, writeBytes } from './chat/fixtures.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const chatgpt = JSON.stringify([{ title: 't', create_time: 1, mapping: { r: { id: 'r', message: null, parent: null, children: [] } }, current_node: 'r', id: 'c' }]);
const claude = JSON.stringify([{ uuid: 'u', name: 'n', chat_messages: [] }]);
const jsonl = `${JSON.stringify({ id: 'a', messages: [{ role: 'user', content: 'hi' }] })}\n`;

let n = 0;
const file = (bytes: Buffer | string, name = `f${++n}.bin`) => writeBytes(tmp.dir, name, bytes);

describe('detectFile', () => {
  it('tells formats from bytes, not names', async () => {
    expect(await detectFile(file('%PDF-1.7\n%âãÏÓ\n', 'a.json'))).toEqual({ kind: 'pdf' });
    expect(await detectFile(file(Buffer.concat([Buffer.alloc(500, 0x20), Buffer.from('junk %PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n')]), 'b.txt'))).toEqual({ kind: 'pdf' });
    // Text that mentions a PDF header is not a PDF (a README, a script checking for one).
    for (const text of ['# Notes\nA PDF starts with `%PDF-1.x`, then objects.\n', 'if data[:5] == b"%PDF-":\n    ok()\n', 'A header such as %PDF-1.7 comes first.\n']) {
      expect((await detectFile(file(text, 'notes.md'))).kind, text).toBe('unknown');
    }
    expect(await detectFile(file(chatgpt, 'report.pdf'))).toEqual({ kind: 'chat', format: 'chatgpt' });
    expect(await detectFile(file(`\uFEFF\n  ${claude}`))).toEqual({ kind: 'chat', format: 'claude' });
    expect(await detectFile(file(jsonl, 'x.json'))).toEqual({ kind: 'chat', format: 'jsonl' });
    // JSON that quotes "%PDF-" early is still JSON.
    expect(await detectFile(file(`[{"title":"%PDF-1.4 in a chat","mapping":{}}]`))).toEqual({ kind: 'chat', format: 'chatgpt' });
  });

  it('reads keys past a long first field, and past the first 64 KB when needed', async () => {
    const longTitle = JSON.stringify([{ title: 'x'.repeat(200_000), mapping: {}, current_node: null, id: 'c' }]);
    expect(await detectFile(file(longTitle))).toEqual({ kind: 'chat', format: 'chatgpt' });
  });

  it('empty, blank, and an empty array', async () => {
    expect(await detectFile(file(''))).toEqual({ kind: 'empty' });
    expect(await detectFile(file(' \n\t '))).toEqual({ kind: 'empty' });
    // An empty array has no format to tell; splitExport rejects it as EXPORT_EMPTY.
    expect(await detectFile(file('[ ]'))).toEqual({ kind: 'chat', format: 'chatgpt' });
  });

  it('unknown, with a reason', async () => {
    const cases: Array<[Buffer | string, RegExp]> = [
      [Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]), /not a PDF, a \.zip or JSON/],
      [Buffer.from('\ufeff[]', 'utf16le'), /UTF-16/],
      ['[1,2,3]', /first element is not an object/],
      ['[{"foo":1,"bar":[]}]', /none of the keys/],
      ['[{"id":"a","messages":[]}]', /JSONL/],
      ['{"mapping":{},"current_node":"x"}', /single conversation object/],
      ['{"foo":1}\n', /without "messages"/],
    ];
    for (const [bytes, reason] of cases) {
      const got = await detectFile(file(bytes));
      expect(got.kind).toBe('unknown');
      expect(got.kind === 'unknown' ? got.reason : '').toMatch(reason);
    }
  });

  it('zip exports: ChatGPT or Claude conversations.json at the root or one folder down', async () => {
    const zip1 = file(makeZip([{ name: 'user.json', data: '{}' }, { name: 'conversations.json', data: chatgpt }]), 'export.zip');
    expect(await detectFile(zip1)).toEqual({ kind: 'chat', format: 'chatgpt', zipEntry: 'conversations.json', zipRecord: expect.objectContaining({ fileName: 'conversations.json' }) });
    const zip2 = file(makeZip([{ name: 'data-2024/conversations.json', data: claude, deflate: false }]));
    expect(await detectFile(zip2)).toEqual({ kind: 'chat', format: 'claude', zipEntry: 'data-2024/conversations.json', zipRecord: expect.objectContaining({ fileName: 'data-2024/conversations.json' }) });
    const zip3 = file(makeZip([{ name: 'conversations.json', data: '[]' }]));
    expect(await detectFile(zip3)).toEqual({ kind: 'chat', format: 'chatgpt', zipEntry: 'conversations.json', zipRecord: expect.objectContaining({ fileName: 'conversations.json' }) });
  });

  it('zip errors and unreadable files throw InputError with a code', async () => {
    await expect(detectFile(file(makeZip([{ name: 'photo.png', data: 'x' }])))).rejects.toMatchObject({ code: 'ZIP_NO_CONVERSATIONS' });
    await expect(detectFile(file(Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(100, 7)])))).rejects.toMatchObject({ code: 'ZIP_CORRUPT' });
    await expect(detectFile(join(tmp.dir, 'missing.json'))).rejects.toMatchObject({ code: 'FILE_UNREADABLE' });
    const dir = join(tmp.dir, 'adir');
    mkdirSync(dir);
    await expect(detectFile(dir)).rejects.toMatchObject({ code: 'FILE_UNREADABLE' });
  });
});
