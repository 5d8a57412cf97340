/**
 * Exports built to hurt the producer: one message so long that it becomes hundreds of thousands
 * of chunks (once a RangeError from `push(...array)` that ended the whole command), and
 * decompression bombs (a small .zip whose conversations.json inflates a thousandfold, by its
 * declared size or behind a header that lies) and exports above the chunk bound. Each is
 * refused with its code within seconds, nothing left behind; the bombs are made here, not committed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError, type DocbatchError } from '../../../src/errors.ts';
import { detectFile } from '../../../src/ingest/detect.ts';
import { splitExport, type ChunkRecord, type SplitOptions } from '../../../src/ingest/chat/split.ts';
import { ChatgptTree, bombZip, makeZip, readSidecar, tempDir, writeBytes, zipOf } from './fixtures.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

let n = 0;
async function split(path: string, options: Partial<SplitOptions> = {}) {
  const kind = await detectFile(path);
  if (kind.kind !== 'chat') throw new Error(`not chat: ${JSON.stringify(kind)}`);
  const sidecar = join(tmp.dir, `s${++n}.jsonl`);
  const started = performance.now();
  const outcome = await splitExport(path, kind, sidecar, { file: 'x', budgetTokens: 3500, ...options }).then(
    (result) => ({ result, error: undefined }),
    (error: unknown) => ({ result: undefined, error: error as DocbatchError }),
  );
  return { ...outcome, sidecar, seconds: (performance.now() - started) / 1000 };
}

function conversation(id: string, text = 'hello there'): Record<string, unknown> {
  const t = new ChatgptTree();
  const leaf = t.chain(t.rootId, [text, `${text} back`]).at(-1) as string;
  return t.build({ id, current_node: leaf });
}

describe('one very long message', () => {
  it('becomes 200 000+ chunks without a RangeError (no spread of an unbounded array)', async () => {
    // Upper-case letters in one run cost about a token each: with a 64-token budget, a part holds
    // some 45 of them, so 9.5 M of them make over 200 000 parts (push(...parts) threw above ~125 000).
    const long = 'A'.repeat(9_500_000);
    const text = `A short first paragraph.\n\n${long}`;
    const line = JSON.stringify({ id: 'long', messages: [{ role: 'user', content: text }, { role: 'assistant', content: 'ok' }] });
    const path = writeBytes(tmp.dir, 'long.jsonl', `${line}\n`);
    const { result, error, sidecar } = await split(path, { budgetTokens: 64 });
    expect(error).toBeUndefined();
    expect(result!.chunks).toBeGreaterThan(200_000);
    const records = readSidecar(readFileSync(sidecar), result!.units) as unknown as ChunkRecord[];
    for (const r of records) expect(r.tokens).toBeLessThanOrEqual(64);
    // Nothing lost: the parts, without their headers, are the message.
    const parts = records.flatMap((r) => r.text.split('\n\n').filter((b) => b.startsWith('user (part ')).map((b) => b.replace(/^user \(part \d+\/\d+\): /, '')));
    expect(parts.join('').replace(/\s/g, '')).toBe(text.replace(/\s/g, ''));
    expect(records.at(-1)!.text).toContain('assistant: ok');
  }, 120_000);
});

describe('decompression bombs', () => {
  // A message of one letter repeated deflates about 1000:1 (deflate's best), as in issue 8.
  const RUN = 'a'.repeat(4_000_000);

  it('a 1 MB zip declaring a 1000:1 conversations.json: ZIP_TOO_LARGE from the zip directory, within seconds', async () => {
    const bomb = bombZip({ conversation: conversation('bomb', RUN), inflatedBytes: 1 << 30 });
    expect(bomb.length).toBeLessThan(2 << 20);
    const path = writeBytes(tmp.dir, 'bomb.zip', bomb);
    const { error, sidecar, seconds } = await split(path);
    expect(error).toBeInstanceOf(InputError);
    expect(error!.code).toBe('ZIP_TOO_LARGE');
    expect(error!.message).toMatch(/inflates to 10\d{8} bytes, 9\d\d times its compressed size .*ZIP_MAX_RATIO \(100\)/);
    expect(error!.place?.file).toBe('x');
    expect(seconds).toBeLessThan(10);
    expect(existsSync(sidecar)).toBe(false);
  }, 60_000);

  it('an entry declaring more bytes than ZIP_MAX_BYTES: ZIP_TOO_LARGE, whatever the ratio', async () => {
    const body = JSON.stringify([conversation('a', 'x'.repeat(5000))]);
    const path = writeBytes(tmp.dir, 'big.zip', makeZip([{ name: 'conversations.json', data: body, deflate: false }]));
    const { error } = await split(path, { maxZipBytes: 4096 });
    expect(error?.code).toBe('ZIP_TOO_LARGE');
    expect(error!.message).toMatch(/inflates to \d+ bytes, above ZIP_MAX_BYTES \(4096\)/);
    // The same archive within the bound goes through.
    expect((await split(path, { maxZipBytes: 1 << 20 })).error).toBeUndefined();
  });

  it('a header that lies (declares 1 MB, inflates to 1 GB): ZIP_TOO_LARGE from the bytes actually inflated, within seconds', async () => {
    const bomb = bombZip({ conversation: conversation('liar', RUN), inflatedBytes: 1 << 30, declaredBytes: 1 << 20 });
    const path = writeBytes(tmp.dir, 'liar.zip', bomb);
    const { error, sidecar, seconds } = await split(path);
    expect(error?.code).toBe('ZIP_TOO_LARGE');
    expect(error!.message).toMatch(/more than the 1048576 bytes its zip header declares/);
    expect(seconds).toBeLessThan(10);
    expect(existsSync(sidecar)).toBe(false);
  }, 60_000);

  it('an entry that inflates to fewer bytes than declared is damaged: ZIP_CORRUPT', async () => {
    const data = Buffer.from(JSON.stringify([conversation('short')]));
    const zip = zipOf([{ name: 'conversations.json', body: deflateRawSync(data), method: 8, size: data.length + 1000, crc: 0 }]);
    const { error } = await split(writeBytes(tmp.dir, 'short.zip', zip));
    expect(error?.code).toBe('ZIP_CORRUPT');
    expect(error!.message).toMatch(new RegExp(`inflates to ${data.length} bytes, its header declares ${data.length + 1000}`));
  });

  it('an export above EXPORT_MAX_CHUNKS: EXPORT_TOO_MANY_CHUNKS, stopping where the bound is crossed', async () => {
    const conversations = Array.from({ length: 2000 }, (_, k) => conversation(`c${k}`));
    const path = writeBytes(tmp.dir, 'many.json', JSON.stringify(conversations));
    const { error, sidecar } = await split(path, { maxChunks: 100 });
    expect(error?.code).toBe('EXPORT_TOO_MANY_CHUNKS');
    expect(error!.message).toMatch(/more than EXPORT_MAX_CHUNKS \(100\)/);
    // One chunk a conversation here: it stopped at the 101st, not after the 2000th.
    expect(error!.place?.conversation).toMatch(/^#100\b/);
    expect(existsSync(sidecar)).toBe(false);
    expect((await split(path, { maxChunks: 2000 })).result?.chunks).toBe(2000);
  });

  it('one conversation above the chunk bound stops inside it', async () => {
    const t = new ChatgptTree();
    const leaf = t.chain(t.rootId, Array.from({ length: 500 }, (_, k) => `message ${k} ${'words '.repeat(40)}`)).at(-1) as string;
    const path = writeBytes(tmp.dir, 'one.json', JSON.stringify([t.build({ id: 'one', current_node: leaf })]));
    const { error } = await split(path, { budgetTokens: 64, maxChunks: 50 });
    expect(error?.code).toBe('EXPORT_TOO_MANY_CHUNKS');
    expect(error!.place?.conversation).toMatch(/^#0 \(id one\)/);
  });
});

describe('an export .zip of many files', () => {
  it('40,000 entries beside conversations.json are looked through in moments, three times (find it, detect it, split it): 41 s before, two reads of the file per entry and pass', async () => {
    // A ChatGPT export holds every image and audio clip of its conversations, one entry each.
    const files = Array.from({ length: 40_000 }, (_, k) => ({ name: `file-${k}.png`, data: '', deflate: false }));
    const path = writeBytes(tmp.dir, 'many.zip', makeZip([...files, { name: 'conversations.json', data: JSON.stringify([conversation('a')]) }]));
    const started = performance.now();
    const { result, error } = await split(path);
    expect(error).toBeUndefined();
    expect(result).toMatchObject({ conversations: 1, chunks: 1 });
    expect(performance.now() - started).toBeLessThan(8000);
  }, 120_000);
});
