import { describe, expect, it } from 'vitest';
import { JsonArrayScanner, JsonLinesScanner } from '../../../src/ingest/chat/json-scan.ts';
import { firstInvalidUtf8, locateJsonError } from '../../../src/ingest/chat/element.ts';
import { rng } from '../../../bench/lib/text-corpus.ts';

const limits = { maxDepth: 64, maxElementBytes: 1 << 20 };

/** Elements the scanner hands over when `bytes` arrives in pieces cut by `cut`. */
function scan(bytes: Buffer, cut: (remaining: number) => number): Array<[string, number, number]> {
  const got: Array<[string, number, number]> = [];
  const s = new JsonArrayScanner('f', limits, (b, offset, index) => got.push([b.toString('utf8'), offset, index]));
  for (let i = 0; i < bytes.length; ) {
    const len = Math.max(1, Math.min(cut(bytes.length - i), bytes.length - i));
    s.push(bytes.subarray(i, i + len));
    i += len;
  }
  s.end();
  return got;
}

describe('JsonArrayScanner', () => {
  // Strings full of the things that fool a naive scanner: escaped quotes, backslash runs, brackets.
  const tricky = [
    { id: 'a', t: 'say \\"hi\\" {not [an] object}', u: '\\\\', v: '\\\\\\"', w: '"]}', x: [1, [2, [3]], { y: '}' }] },
    { id: 'b', t: '東京 🚀 \u0000 \n\t', nested: { deep: [[[[{}]]]] } },
    {},
    { id: 'c', t: 'x'.repeat(5000) + '\\' },
  ];
  const text = `\uFEFF [\n ${tricky.map((x) => JSON.stringify(x)).join(' ,\n')} \n] \n`;
  const bytes = Buffer.from(text);
  const expected = tricky.map((x) => JSON.stringify(x));

  it('finds each element whatever the chunk boundaries (1 byte, random, whole)', () => {
    const rand = rng(5);
    for (const cut of [() => 1, () => 1 + Math.floor(rand() * 17), () => 1 + Math.floor(rand() * 4000), () => Infinity]) {
      const got = scan(bytes, cut);
      expect(got.map((g) => g[0])).toEqual(expected);
      expect(got.map((g) => g[2])).toEqual([0, 1, 2, 3]);
      for (const [el, offset] of got) expect(bytes.subarray(offset, offset + Buffer.byteLength(el)).toString()).toBe(el);
    }
  });

  it('counts depth from the top-level array and rejects the first bracket past the limit', () => {
    const s = new JsonArrayScanner('f', { maxDepth: 4, maxElementBytes: 1000 }, () => undefined);
    expect(() => s.push(Buffer.from('[{"a":[{"b":1}]}]'))).not.toThrow();
    const t = new JsonArrayScanner('f', { maxDepth: 4, maxElementBytes: 1000 }, () => undefined);
    expect(() => t.push(Buffer.from('[{"a":[{"b":[1]}]}]'))).toThrow(expect.objectContaining({ code: 'EXPORT_TOO_DEEP', place: expect.objectContaining({ offset: 12 }) }));
  });
});

describe('JsonLinesScanner', () => {
  it('hands over non-blank lines with their 1-based line number and byte offset', () => {
    const text = '{"a":1}\n\n  \n{"b":"é"}\r\n{"c":3}';
    const got: Array<[string, number, number]> = [];
    const s = new JsonLinesScanner('f', limits, (b, offset, line) => got.push([b.toString(), offset, line]));
    for (const ch of Buffer.from(text)) s.push(Buffer.from([ch]));
    s.end();
    expect(got).toEqual([
      ['{"a":1}', 0, 1],
      ['{"b":"é"}\r', 12, 4],
      ['{"c":3}', 24, 5],
    ]);
  });
});

describe('locating errors', () => {
  it('locateJsonError agrees with JSON.parse on validity and points at the first bad character', () => {
    expect(locateJsonError('{"a":[1,2,{"b":null}],"c":"\\u00e9"}')).toBeUndefined();
    expect(locateJsonError('{"a":tru}')).toEqual({ pos: 5, message: 'unexpected "t"' });
    expect(locateJsonError('{"a":1,}')?.pos).toBe(7);
    expect(locateJsonError('{"a":"x\ny"}')?.pos).toBe(7);
    expect(locateJsonError('{"a":"\\q"}')?.pos).toBe(6);
    expect(locateJsonError('{"a":01}')?.pos).toBe(6);
    expect(locateJsonError('{"a":1} x')?.pos).toBe(8);
  });

  it('firstInvalidUtf8 finds truncated, overlong, surrogate and out-of-range sequences', () => {
    const ok = Buffer.from('aé東🚀');
    expect(firstInvalidUtf8(ok)).toBe(ok.length);
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xe6, 0x9d]))).toBe(1);
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xe0, 0x80, 0x80]))).toBe(1);
    expect(firstInvalidUtf8(Buffer.from([0xed, 0xb0, 0x80]))).toBe(0);
    expect(firstInvalidUtf8(Buffer.from([0x61, 0x62, 0xf4, 0x90, 0x80, 0x80]))).toBe(2);
    expect(firstInvalidUtf8(Buffer.from([0x80]))).toBe(0);
  });
});
