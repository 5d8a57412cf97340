import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError, type DocbatchError } from '../../../src/errors.ts';
import { detectFile } from '../../../src/ingest/detect.ts';
import { splitExport, type SplitOptions } from '../../../src/ingest/chat/split.ts';
import type { ChatFormat } from '../../../src/ingest/chat/types.ts';
import { ChatgptTree, makeZip, tempDir, writeBytes, zipOf } from './fixtures.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

let n = 0;
/** Splits `bytes` as `format` and returns the error it throws; checks the sidecar was removed. */
async function failure(bytes: Buffer | string, format: ChatFormat = 'chatgpt', options: Partial<SplitOptions> = {}): Promise<DocbatchError> {
  const name = `bad${++n}`;
  const path = writeBytes(tmp.dir, name, bytes);
  const sidecar = join(tmp.dir, `${name}.sidecar`);
  const err = await splitExport(path, { kind: 'chat', format }, sidecar, { file: name, budgetTokens: 500, ...options }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  expect(existsSync(sidecar)).toBe(false);
  expect((err as InputError).place?.file).toBe(name);
  return err as DocbatchError;
}

function goodConversation(id: string, text = 'hello'): Record<string, unknown> {
  const t = new ChatgptTree();
  const leaf = t.chain(t.rootId, [text, `${text} back`]).at(-1) as string;
  return t.build({ id, current_node: leaf });
}

describe('bad input: code and place', () => {
  it('invalid JSON inside a conversation: EXPORT_BAD_JSON at the exact byte', async () => {
    const good = JSON.stringify(goodConversation('a', 'héllo wörld ✨'));
    const prefix = `[${good},{"id":"b","mapping":{"x":`;
    const err = await failure(`${prefix}tru}}]`);
    expect(err.code).toBe('EXPORT_BAD_JSON');
    expect(err.place?.offset).toBe(Buffer.byteLength(prefix));
    expect(err.describe()).toMatch(/^bad\d+: byte \d+: conversation #1: EXPORT_BAD_JSON: unexpected "t"/);
  });

  it('structural JSON errors between conversations and at the end', async () => {
    const good = JSON.stringify(goodConversation('a'));
    let err = await failure(`[${good} x]`);
    expect([err.code, err.place?.offset]).toEqual(['EXPORT_BAD_JSON', good.length + 2]);
    err = await failure(`[${good},]`);
    expect([err.code, err.place?.offset]).toEqual(['EXPORT_BAD_JSON', good.length + 2]);
    err = await failure(`[${good}`);
    expect([err.code, err.place?.offset, err.message]).toEqual(['EXPORT_BAD_JSON', good.length + 1, "unexpected end of input: the closing ']' is missing"]);
    err = await failure(`[${good.slice(0, 50)}`);
    expect(err.message).toMatch(/conversation #0 is cut off/);
    err = await failure(`[${good}] trailing`);
    expect([err.code, err.place?.offset]).toEqual(['EXPORT_BAD_JSON', good.length + 3]);
  });

  it('invalid UTF-8: EXPORT_BAD_UTF8 at the byte offset', async () => {
    const head = Buffer.from(`[${JSON.stringify(goodConversation('a'))},{"id":"b","title":"caf`);
    const bytes = Buffer.concat([head, Buffer.from([0xc3, 0x28]), Buffer.from('"}]')]);
    const err = await failure(bytes);
    expect(err.code).toBe('EXPORT_BAD_UTF8');
    expect(err.place?.offset).toBe(head.length);
    expect(err.place?.conversation).toBe('#1');
    // An overlong encoding and a lone surrogate are invalid too.
    for (const bad of [[0xc0, 0xaf], [0xed, 0xa0, 0x80]]) {
      const e = await failure(Buffer.concat([Buffer.from('[{"id":"'), Buffer.from(bad), Buffer.from('"}]')]));
      expect([e.code, e.place?.offset]).toEqual(['EXPORT_BAD_UTF8', 8]);
    }
  });

  it('wrong shape: EXPORT_SCHEMA names the conversation and the field path', async () => {
    const bad = goodConversation('abc');
    const mapping = bad['mapping'] as Record<string, { message: { content: Record<string, unknown> } | null }>;
    const n2 = mapping['n2']?.message;
    if (!n2) throw new Error('fixture');
    n2.content['parts'] = 'not a list';
    const good = goodConversation('ok');
    const text = `[${JSON.stringify(good)},${JSON.stringify(good)},${JSON.stringify(good)},${JSON.stringify(bad)}]`;
    const err = await failure(text);
    expect(err.code).toBe('EXPORT_SCHEMA');
    expect(err.place?.conversation).toBe('#3 (id abc)');
    expect(err.place?.field).toBe('mapping.n2.message.content.parts');
    expect(err.describe()).toMatch(/: conversation #3 \(id abc\): field mapping\.n2\.message\.content\.parts: EXPORT_SCHEMA: expected an array, found a string$/);

    expect((await failure('[{"id":"x","mapping":[]}]')).place?.field).toBe('mapping');
    expect((await failure('[{"mapping":{}}]')).place?.field).toBe('id');
    expect((await failure('[42]')).code).toBe('EXPORT_SCHEMA');
    const claude = await failure('[{"uuid":"u1","name":"t","chat_messages":[{"sender":"human","text":"hi"},{"text":"no sender"}]}]', 'claude');
    expect([claude.code, claude.place?.field, claude.place?.conversation]).toEqual(['EXPORT_SCHEMA', 'chat_messages[1].sender', '#0 (id u1)']);
  });

  it('an id, title or role longer than any real one: EXPORT_SCHEMA naming the field (each is repeated in every chunk: a 2 MB title made an 8 MB line write an 861 MB sidecar)', async () => {
    const long = (c: string, n: number) => c.repeat(n);
    const text = 'word '.repeat(20_000); // several chunks at 500 tokens
    const line = (conv: Record<string, unknown>) => `${JSON.stringify(conv)}\n`;
    const jsonl = async (conv: Record<string, unknown>) => failure(line(conv), 'jsonl');
    const title = await jsonl({ id: 'x', title: long('T', 5000), messages: [{ role: 'user', content: text }] });
    expect([title.code, title.place?.field, title.place?.conversation]).toEqual(['EXPORT_SCHEMA', 'title', 'id x']);
    expect(title.message).toBe('expected at most 4096 characters, found 5000 (it is repeated in every chunk it belongs to)');
    expect((await jsonl({ id: 'x', messages: [{ role: 'user', id: long('I', 2000), content: text }] })).place?.field).toBe('messages[0].id');
    expect((await jsonl({ id: long('C', 2000), messages: [{ role: 'user', content: text }] })).place?.field).toBe('id');
    // A 20,000-character role was a RangeError ("too small for a message header"): the whole enqueue stopped.
    expect((await jsonl({ id: 'x', messages: [{ role: long('R', 20_000), content: text }] })).place?.field).toBe('messages[0].role');

    const t = new ChatgptTree();
    const [first] = t.chain(t.rootId, ['hi', 'hello']);
    ((t.mapping[first!]!.message as { author: { role: string } }).author).role = long('r', 300);
    const chatgpt = await failure(`[${JSON.stringify(t.build({ id: 'c1', current_node: 'n2' }))}]`);
    expect([chatgpt.code, chatgpt.place?.field]).toEqual(['EXPORT_SCHEMA', 'mapping.n1.message.author.role']);
    // A node id stands in for a message without its own; a long one is named, cut in the message.
    const keyed = new ChatgptTree();
    const [n1] = keyed.chain(keyed.rootId, ['hi']);
    const node = keyed.mapping[n1!]!;
    delete keyed.mapping[n1!];
    const bigKey = long('k', 3000);
    keyed.mapping[bigKey] = { ...node, id: bigKey, message: { ...(node.message as object), id: undefined } };
    keyed.mapping[keyed.rootId]!.children = [bigKey];
    const byKey = await failure(`[${JSON.stringify(keyed.build({ id: 'c2', current_node: bigKey }))}]`);
    expect(byKey.place?.field).toBe(`mapping.${JSON.stringify(`${long('k', 80)}…`)}`);
    const claude = await failure(`[${JSON.stringify({ uuid: 'u1', name: long('N', 5000), chat_messages: [{ sender: 'human', text: 'hi' }] })}]`, 'claude');
    expect([claude.code, claude.place?.field]).toEqual(['EXPORT_SCHEMA', 'name']);

    // At the bounds, they go in.
    const path = writeBytes(tmp.dir, 'bounds.jsonl', line({ id: long('C', 1024), title: long('T', 4096), messages: [{ role: long('R', 256), id: long('I', 1024), content: 'hi' }] }));
    await expect(splitExport(path, { kind: 'chat', format: 'jsonl' }, join(tmp.dir, 'bounds.sidecar'), { file: 'bounds', budgetTokens: 500 })).resolves.toMatchObject({ chunks: 1 });
  });

  it('a role label that leaves a split message no room at CHUNK_TOKENS: EXPORT_SCHEMA saying to raise it (was a RangeError that stopped the enqueue)', async () => {
    const err = await failure(`${JSON.stringify({ id: 'x', messages: [{ role: 'R'.repeat(250), id: 'm1', content: 'word '.repeat(1000) }] })}\n`, 'jsonl', { budgetTokens: 64 });
    expect(err.code).toBe('EXPORT_SCHEMA');
    expect(err.place?.conversation).toBe('id x');
    expect(err.message).toMatch(/^message "m1" is longer than a chunk and its role label takes \d+ tokens with a part number: CHUNK_TOKENS 64 leaves its parts no room; raise CHUNK_TOKENS$/);
  });

  it('JSONL errors carry the line', async () => {
    const ok = '{"id":"a","messages":[{"role":"user","content":"hi"}]}';
    let err = await failure(`${ok}\n\n${ok}\n{"id":"c","messages":[{"role":"user","content":"hi"}\n`, 'jsonl');
    expect([err.code, err.place?.line, err.place?.offset]).toEqual(['EXPORT_BAD_JSON', 4, ok.length * 2 + 3 + 52]);
    err = await failure(`${ok}\n{"id":"b","messages":{"role":"user"}}\n`, 'jsonl');
    expect([err.code, err.place?.line, err.place?.field, err.place?.conversation]).toEqual(['EXPORT_SCHEMA', 2, 'messages', 'id b']);
  });

  it('nothing to do: EXPORT_EMPTY', async () => {
    expect((await failure('[]')).code).toBe('EXPORT_EMPTY');
    expect((await failure('  [ \n ]  ')).code).toBe('EXPORT_EMPTY');
    expect((await failure('\n\n', 'jsonl')).code).toBe('EXPORT_EMPTY');
    const t = new ChatgptTree();
    const hidden = t.add(t.rootId, { role: 'system', text: 'sys', hidden: true });
    const err = await failure(JSON.stringify([t.build({ id: 'h', current_node: hidden })]));
    expect([err.code, err.message]).toEqual(['EXPORT_EMPTY', 'the export holds 1 conversation but no visible message']);
  });

  it('nesting deeper than a real export: EXPORT_TOO_DEEP, before JSON.parse sees it', async () => {
    const deep = `[{"id":"d","x":${'['.repeat(100_000)}${']'.repeat(100_000)}}]`;
    const err = await failure(deep);
    // '[' at 0 is depth 1, '{' depth 2, the first '[' of x (offset 15) depth 3: depth 65 is at 15 + 62.
    expect([err.code, err.place?.offset]).toEqual(['EXPORT_TOO_DEEP', 15 + 62]);
    const line = await failure(`{"id":"d","messages":${'['.repeat(200)}${']'.repeat(200)}}\n`, 'jsonl');
    expect([line.code, line.place?.line]).toEqual(['EXPORT_TOO_DEEP', 1]);
  });

  it('a conversation larger than the cap is rejected while streaming, not loaded', async () => {
    // 48 MB in one conversation, with a 4 MB cap: memory must not grow by anything like 48 MB.
    const path = join(tmp.dir, 'huge.json');
    const out = createWriteStream(path);
    out.write(`[${JSON.stringify(goodConversation('small'))},{"id":"huge","title":"`);
    const block = 'x'.repeat(1 << 20);
    for (let i = 0; i < 48; i++) if (!out.write(block)) await once(out, 'drain');
    out.end('"}]');
    await once(out, 'close');
    const sidecar = join(tmp.dir, 'huge.sidecar');
    global.gc?.();
    const before = process.memoryUsage().arrayBuffers + process.memoryUsage().heapUsed;
    let peak = before;
    const timer = setInterval(() => {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.arrayBuffers + m.heapUsed);
    }, 1);
    const err = (await splitExport(path, { kind: 'chat', format: 'chatgpt' }, sidecar, {
      file: 'huge.json',
      budgetTokens: 500,
      maxConversationBytes: 4 << 20,
    }).catch((e: unknown) => e)) as DocbatchError;
    clearInterval(timer);
    expect(err.code).toBe('EXPORT_TOO_LARGE');
    expect(err.place?.conversation).toBe('#1');
    expect(existsSync(sidecar)).toBe(false);
    expect(peak - before).toBeLessThan(24 << 20);
  });

  it('zip problems: no conversations.json, damaged archive, damaged entry', async () => {
    const noConv = writeBytes(tmp.dir, 'noconv.zip', makeZip([{ name: 'chat.html', data: '<html>' }, { name: 'a/b/conversations.json', data: '[]' }]));
    await expect(detectFile(noConv)).rejects.toMatchObject({ code: 'ZIP_NO_CONVERSATIONS' });

    const good = makeZip([{ name: 'conversations.json', data: JSON.stringify([goodConversation('z')]) }]);
    const truncated = writeBytes(tmp.dir, 'trunc.zip', good.subarray(0, good.length - 30));
    await expect(detectFile(truncated)).rejects.toMatchObject({ code: 'ZIP_CORRUPT' });

    // The central directory is fine but the deflated data is garbage.
    const body = Buffer.from(JSON.stringify([goodConversation('z', 'y'.repeat(5000))]));
    const zip = makeZip([{ name: 'conversations.json', data: body }]);
    zip.fill(0xff, 60, 90);
    const damaged = writeBytes(tmp.dir, 'damaged.zip', zip);
    const sidecar = join(tmp.dir, 'damaged.sidecar');
    const err = (await splitExport(damaged, { kind: 'chat', format: 'chatgpt', zipEntry: 'conversations.json' }, sidecar, {
      file: 'damaged.zip',
      budgetTokens: 500,
    }).catch((e: unknown) => e)) as DocbatchError;
    expect(err.code).toBe('ZIP_CORRUPT');
    expect(existsSync(sidecar)).toBe(false);
  });

  it("a .zip whose conversations.json is damaged or of the wrong shape: the export's own code, entry and place (not UNSUPPORTED_FORMAT)", async () => {
    const cases: Array<[string, string | Buffer, Record<string, unknown>]> = [
      ['cut.zip', '[{"id":"a",', { code: 'EXPORT_BAD_JSON', place: { entry: 'export/conversations.json', offset: 11 } }],
      ['shape.zip', '[{"title":"x","id":"a"}]', { code: 'EXPORT_SCHEMA', place: { entry: 'export/conversations.json', field: 'mapping' } }],
      ['bytes.zip', Buffer.from([0xff, 0xff, 0x5b]), { code: 'EXPORT_BAD_JSON', place: { entry: 'export/conversations.json', offset: 0 } }],
    ];
    for (const [name, data, expected] of cases) {
      const path = writeBytes(tmp.dir, name, makeZip([{ name: 'export/conversations.json', data }]));
      const kind = await detectFile(path);
      expect(kind, name).toEqual({ kind: 'chat', format: 'chatgpt', zipEntry: 'export/conversations.json', zipRecord: expect.objectContaining({ fileName: 'export/conversations.json' }) });
      const err = await splitExport(path, kind as { kind: 'chat'; format: 'chatgpt'; zipEntry: string }, join(tmp.dir, `${name}.sidecar`), { file: name, budgetTokens: 500 }).catch((e: unknown) => e);
      expect(err, name).toMatchObject(expected);
    }
    // A shape with its own advice stays that advice.
    const array = writeBytes(tmp.dir, 'array.zip', makeZip([{ name: 'conversations.json', data: '[{"messages":[]}]' }]));
    expect(await detectFile(array)).toMatchObject({ kind: 'unknown', reason: expect.stringMatching(/give it as JSONL/) });
  });

  it('a password-protected export: ZIP_ENCRYPTED, naming the file and the entry, saying what to do', async () => {
    // A real one, made by Info-ZIP's `zip -e` (ZipCrypto), the entry one folder down as ChatGPT exports have it.
    expect(spawnSync('zip', ['-v']).status, 'zip is missing: run scripts/ensure-zip.sh').toBe(0);
    const folder = join(tmp.dir, 'locked');
    mkdirSync(join(folder, 'chatgpt-export'), { recursive: true });
    writeBytes(join(folder, 'chatgpt-export'), 'conversations.json', JSON.stringify([goodConversation('a')]));
    writeBytes(join(folder, 'chatgpt-export'), 'chat.html', '<html>');
    const made = spawnSync('zip', ['-q', '-r', '-e', '-P', 'secret', 'locked.zip', 'chatgpt-export'], { cwd: folder, encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    const locked = join(folder, 'locked.zip');
    // WinZip AES (7-Zip, Windows): method 99, the same flag bit.
    const body = Buffer.from(JSON.stringify([goodConversation('b')]));
    const aes = writeBytes(tmp.dir, 'aes.zip', zipOf([{ name: 'conversations.json', body: randomBytes(body.length + 28), method: 99, size: body.length, crc: 0, flags: 0x1 }]));

    for (const [path, entry] of [
      [locked, 'chatgpt-export/conversations.json'],
      [aes, 'conversations.json'],
    ] as const) {
      const err = (await detectFile(path).catch((e: unknown) => e)) as DocbatchError;
      expect(err).toBeInstanceOf(InputError);
      expect(err.code).toBe('ZIP_ENCRYPTED');
      expect(err.place).toEqual({ file: path, entry });
      expect(err.describe()).toBe(
        `${path}: ${entry}: ZIP_ENCRYPTED: the .zip is encrypted (password-protected) and docbatch does not decrypt: unzip it with its password and enqueue the ${entry} inside, or zip the export again without a password`,
      );
      // Splitting it (a kind decided earlier) says the same, and leaves no sidecar.
      const sidecar = join(tmp.dir, 'locked.sidecar');
      const split = (await splitExport(path, { kind: 'chat', format: 'chatgpt', zipEntry: entry }, sidecar, { file: 'locked.zip', budgetTokens: 500 }).catch((e: unknown) => e)) as DocbatchError;
      expect([split.code, split.place]).toEqual(['ZIP_ENCRYPTED', { file: 'locked.zip', entry }]);
      expect(existsSync(sidecar)).toBe(false);
    }
  });

  it('an error inside a .zip names the entry its byte offset counts from', async () => {
    const good = JSON.stringify(goodConversation('a'));
    const prefix = `[${good},{"id":"b","mapping":{"x":`;
    const zip = makeZip([{ name: 'chatgpt-export/chat.html', data: '<html>' }, { name: 'chatgpt-export/conversations.json', data: `${prefix}tru}}]` }]);
    const path = writeBytes(tmp.dir, 'export.zip', zip);
    const kind = await detectFile(path);
    expect(kind).toEqual({ kind: 'chat', format: 'chatgpt', zipEntry: 'chatgpt-export/conversations.json', zipRecord: expect.objectContaining({ fileName: 'chatgpt-export/conversations.json' }) });
    const err = (await splitExport(path, kind as { kind: 'chat'; format: 'chatgpt'; zipEntry: string }, join(tmp.dir, 'zip.sidecar'), { file: 'export.zip', budgetTokens: 500 }).catch((e: unknown) => e)) as DocbatchError;
    expect(err).toBeInstanceOf(InputError);
    expect(err.place).toMatchObject({ file: 'export.zip', entry: 'chatgpt-export/conversations.json', offset: Buffer.byteLength(prefix), conversation: '#1' });
    expect(err.describe()).toMatch(/^export\.zip: chatgpt-export\/conversations\.json: byte \d+: conversation #1: EXPORT_BAD_JSON: unexpected "t"/);
  });

  it('an aborted split throws ABORTED and leaves no sidecar', async () => {
    const path = writeBytes(tmp.dir, 'ok.json', JSON.stringify([goodConversation('a')]));
    const sidecar = join(tmp.dir, 'ok.sidecar');
    const ac = new AbortController();
    ac.abort();
    await expect(
      splitExport(path, { kind: 'chat', format: 'chatgpt' }, sidecar, { file: 'ok.json', budgetTokens: 500, signal: ac.signal }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    expect(existsSync(sidecar)).toBe(false);
    // Aborted while streaming: a 20 MB export read in 1 MB pieces.
    const many = Array.from({ length: 1000 }, (_, k) => goodConversation(`c${k}`, 'z'.repeat(10_000)));
    const big = writeBytes(tmp.dir, 'many.json', JSON.stringify(many));
    const ac2 = new AbortController();
    const running = splitExport(big, { kind: 'chat', format: 'chatgpt' }, sidecar, { file: 'many.json', budgetTokens: 5000, signal: ac2.signal });
    setImmediate(() => ac2.abort(new Error('shutdown')));
    await expect(running).rejects.toMatchObject({ code: 'ABORTED', cause: new Error('shutdown') });
    expect(existsSync(sidecar)).toBe(false);
    await expect(splitExport(path, { kind: 'chat', format: 'chatgpt' }, sidecar, { file: 'ok.json', budgetTokens: 10 })).rejects.toThrow(
      /budgetTokens has a bad value: 10/,
    );
  });
});
