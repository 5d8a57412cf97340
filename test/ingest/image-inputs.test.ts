/**
 * Image files enqueued as documents (PNG, JPEG, TIFF, WebP) are checked at enqueue from their
 * header (src/ingest/prepare.ts). One with more pixels than docbatch decodes (a decompression
 * bomb: a few KB of PNG that inflate to gigabytes) is IMAGE_TOO_LARGE, naming its size and the
 * limit; it was IMAGE_CORRUPT, as if the file were damaged. A multi-page TIFF is checked page by
 * page (a later page over the limit went in and failed at the worker). A damaged one stays
 * IMAGE_CORRUPT.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, InputError } from '../../src/errors.ts';
import { prepareFile } from '../../src/ingest/prepare.ts';
import { tiffPageSizes } from '../../src/ingest/tiff-pages.ts';
import { LocalBlobStore } from '../../src/store/blobs-local.ts';

const dir = mkdtempSync(join(tmpdir(), 'docbatch-image-inputs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A PNG whose header says `width` x `height` (8-bit grey) over one row of data: its size is read from the header alone. */
function pngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(width + 1))), chunk('IEND', Buffer.alloc(0))]);
}

/** A little-endian TIFF of uncompressed 8-bit grey pages of these sizes (their data left short: headers are what is read). */
function tiffPages(sizes: Array<[number, number]>): Buffer {
  const ifdBytes = 2 + 9 * 12 + 4;
  const dataAt = 8 + ifdBytes * sizes.length;
  const ifds = sizes.map(([w, h], i) => {
    const entries: Array<[number, number, number]> = [
      [256, 4, w], [257, 4, h], [258, 3, 8], [259, 3, 1], [262, 3, 1], [273, 4, dataAt], [277, 3, 1], [278, 4, h], [279, 4, w * h],
    ];
    const b = Buffer.alloc(ifdBytes);
    b.writeUInt16LE(entries.length, 0);
    entries.forEach(([tag, type, value], k) => {
      const o = 2 + k * 12;
      b.writeUInt16LE(tag, o);
      b.writeUInt16LE(type, o + 2);
      b.writeUInt32LE(1, o + 4);
      if (type === 3) b.writeUInt16LE(value, o + 8);
      else b.writeUInt32LE(value >>> 0, o + 8);
    });
    b.writeUInt32LE(i + 1 < sizes.length ? 8 + ifdBytes * (i + 1) : 0, ifdBytes - 4);
    return b;
  });
  return Buffer.concat([Buffer.from([0x49, 0x49, 0x2a, 0x00, 8, 0, 0, 0]), ...ifds, Buffer.alloc(256)]);
}

async function prepare(name: string, bytes: Buffer, limits?: { maxPages: number }): Promise<unknown> {
  const file = join(dir, name);
  writeFileSync(file, bytes);
  return prepareFile(file, new LocalBlobStore(join(dir, 'blobs')), { chunkTokens: 1000, chunkOverlapTokens: 0, ...(limits ? { limits } : {}) }).catch((err: unknown) => err);
}

describe('image inputs', () => {
  it('over the pixel limit: IMAGE_TOO_LARGE, its size and the limit named, nothing stored', async () => {
    const file = join(dir, 'bomb.png');
    const err = await prepare('bomb.png', pngHeader(20_000, 12_000));
    expect(err).toBeInstanceOf(InputError);
    expect(err).toMatchObject({ code: 'IMAGE_TOO_LARGE', place: { file }, action: 'reject' });
    expect((err as InputError).message).toMatch(/20000 x 12000 pixels \(240,000,000\).*200,000,000/);
    expect((err as InputError).describe()).toMatch(/^.*bomb\.png: IMAGE_TOO_LARGE: /);
    expect(ERROR_CODES).toHaveProperty('IMAGE_TOO_LARGE');
    expect(existsSync(join(dir, 'blobs'))).toBe(false);
  });

  it('a multi-page TIFF whose later page is over the limit: IMAGE_TOO_LARGE naming the page (it went in, and failed at the worker)', async () => {
    const file = join(dir, 'pages.tiff');
    const err = await prepare('pages.tiff', tiffPages([[8, 8], [8, 8], [20_000, 12_000]]));
    expect(err).toMatchObject({ code: 'IMAGE_TOO_LARGE', place: { file, page: 3 } });
    expect((err as InputError).message).toMatch(/20000 x 12000 pixels/);
    expect(await prepare('small.tiff', tiffPages([[8, 8], [16, 4]]))).toMatchObject({ kind: 'image', pages: 2, format: 'tiff' });
  });

  it('a TIFF of 2,000 pages is checked page by page in moments (its directory read once, no page decoded)', async () => {
    const sizes = Array.from({ length: 2000 }, (): [number, number] => [8, 8]);
    sizes[1999] = [15_000, 15_000];
    const started = performance.now();
    expect(await prepare('fax.tiff', tiffPages(sizes))).toMatchObject({ code: 'IMAGE_TOO_LARGE', place: { page: 2000 }, message: expect.stringMatching(/page 2000 is 15000 x 15000 pixels/) });
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it.skipIf(!existsSync('/proc/self/io'))('the directories of a TIFF of 20,000 pages are read in blocks: fewer read calls than pages (were two a page, 52 s at 100,000 pages on a loaded machine)', async () => {
    const sizes = Array.from({ length: 20_000 }, (_, i): [number, number] => [8 + (i % 5), 8]);
    const file = join(dir, 'pages-20000.tiff');
    writeFileSync(file, tiffPages(sizes));
    const readCalls = (): number => Number(/syscr: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1]);
    const before = readCalls();
    const pages = await tiffPageSizes(file);
    expect(readCalls() - before).toBeLessThan(2_000);
    expect(pages).toHaveLength(20_000);
    expect(pages.every((p, i) => p.page === i + 1 && p.width === 8 + (i % 5) && p.height === 8)).toBe(true);
  });

  it('a TIFF of more pages than INPUT_MAX_PAGES (100,000): IMAGE_TOO_MANY_PAGES, count and size named, nothing stored (it went in as 100,001 page jobs)', async () => {
    // 11 MB of directories naming one 8 x 8 image: each page's render would walk the chain from the start.
    const bytes = tiffPages(Array.from({ length: 100_001 }, (): [number, number] => [8, 8]));
    const file = join(dir, 'page-bomb.tiff');
    writeFileSync(file, bytes);
    const started = performance.now();
    const err = await prepareFile(file, new LocalBlobStore(join(dir, 'bomb-blobs')), { chunkTokens: 1000, chunkOverlapTokens: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(err).toMatchObject({ code: 'IMAGE_TOO_MANY_PAGES', place: { file } });
    expect((err as InputError).message).toBe(`a TIFF image of 100001 pages in ${bytes.length} bytes, more than INPUT_MAX_PAGES (100000): split it, or raise INPUT_MAX_PAGES`);
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(existsSync(join(dir, 'bomb-blobs'))).toBe(false);
  });

  it('a TIFF of far more pages than INPUT_MAX_PAGES is refused in moments: its directories are counted up to the bound before sharp reads every one (400,000 of them, 45 MB: ~20 s)', async () => {
    // 11 MB of 100,000 directories against a bound of 1,000: sharp took 2 to 9 s to count them all.
    const bytes = tiffPages(Array.from({ length: 100_000 }, (): [number, number] => [8, 8]));
    const file = join(dir, 'long-chain.tiff');
    writeFileSync(file, bytes);
    const started = performance.now();
    const err = await prepareFile(file, new LocalBlobStore(join(dir, 'chain-blobs')), { chunkTokens: 1000, chunkOverlapTokens: 0, limits: { maxPages: 1000 } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'IMAGE_TOO_MANY_PAGES', place: { file } });
    // Counted no further than the bound, and said so.
    expect((err as InputError).message).toBe(`a TIFF image of more than 1000 pages in ${bytes.length} bytes, more than INPUT_MAX_PAGES (1000): split it, or raise INPUT_MAX_PAGES`);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(existsSync(join(dir, 'chain-blobs'))).toBe(false);
  });

  it('keeps to maxPages: a TIFF at the bound goes in, one page more is refused', async () => {
    const pages = (n: number) => tiffPages(Array.from({ length: n }, (): [number, number] => [8, 8]));
    expect(await prepare('three.tiff', pages(3), { maxPages: 3 })).toMatchObject({ kind: 'image', pages: 3 });
    expect(await prepare('four.tiff', pages(4), { maxPages: 3 })).toMatchObject({ code: 'IMAGE_TOO_MANY_PAGES', message: expect.stringContaining('image of 4 pages') });
  });

  it('a damaged one is IMAGE_CORRUPT, its decoder\'s message on one line, each part once; one within the limit goes in', async () => {
    const good = pngHeader(64, 1);
    const damaged = Buffer.concat([good.subarray(0, 20), Buffer.alloc(8)]);
    expect(await prepare('damaged.png', damaged)).toMatchObject({ code: 'IMAGE_CORRUPT' });
    expect(await prepare('fine.png', good)).toMatchObject({ kind: 'image', pages: 1, format: 'png' });
    // libvips repeats its warnings one a line: the message says each once, on one line.
    const jpeg = (await prepare('cut.jpg', Buffer.from([0xff, 0xd8, 0xff, 0xe0]))) as InputError;
    expect(jpeg.code).toBe('IMAGE_CORRUPT');
    expect(jpeg.message).not.toContain('\n');
    expect(jpeg.message).toMatch(/cannot be decoded: .*premature end of JPEG image/);
    expect(jpeg.message.match(/premature end of JPEG image/g)).toHaveLength(1);
    expect((await prepare('cut.png', good.subarray(0, 8))) as InputError).toMatchObject({ code: 'IMAGE_CORRUPT', message: expect.not.stringMatching(/:\s*$/) });
  });
});
