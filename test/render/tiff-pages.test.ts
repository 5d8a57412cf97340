/**
 * Pages of a multi-page TIFF rendered for the worker (renderImagePage with the worker's
 * TiffPages): given the file, libvips read every directory of it for each page, so the pages of a
 * 2,000-page fax cost 2,000² directory reads. Each page is now handed over as a TIFF of its own,
 * its directory found once per document; it must decode to the very pixels the file's page does,
 * and a damaged chain (a loop, a directory or strip outside the file) is still RENDER_FAILED.
 * Reads are counted from /proc/self/io (Linux): what the kernel was asked, libvips included.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { renderImagePage } from '../../src/render/image-file.ts';
import { Gate, TiffPages } from '../../src/render/tiff-page.ts';
import { generateTiff, xResolutionOutside } from '../../bench/lib/tiff-gen.ts';

const dir = mkdtempSync(join(tmpdir(), 'docbatch-tiff-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(bytes: Buffer): string {
  const path = join(dir, `t${++n}.tiff`);
  writeFileSync(path, bytes);
  return path;
}

const readCalls = (): number => Number(/syscr: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1]);

async function pixels(path: string, page: number, tiffPages?: TiffPages): Promise<Buffer> {
  const r = await renderImagePage({ path, page, longestSide: 4096, format: 'png' }, tiffPages);
  return sharp(r.image).raw().toBuffer();
}

/** The file's own page, as libvips reads it from the file. */
async function filePage(path: string, page: number): Promise<Buffer> {
  return pixels(path, page);
}

describe('TIFF pages for the worker', () => {
  it('each page decodes to the same pixels as the file read by libvips: compressions (a fax CCITT G4 too), tiles, BigTIFF, both byte orders, several strips', async () => {
    const frames = await Promise.all(
      Array.from({ length: 4 }, (_, i) => sharp({ create: { width: 40 + i * 8, height: 30 + i * 4, channels: 3, background: { r: i * 60, g: 255 - i * 50, b: 100 } } }).png().toBuffer()),
    );
    const made: Array<[string, Buffer]> = [];
    for (const options of [{ compression: 'none' }, { compression: 'lzw', predictor: 'horizontal' }, { compression: 'jpeg', quality: 80 }, { compression: 'deflate', tile: true, tileWidth: 16, tileHeight: 16 }, { compression: 'lzw', bigtiff: true }] as const) {
      made.push([JSON.stringify(options), await sharp(frames, { join: { animated: true } }).tiff(options).toBuffer()]);
    }
    // A fax: 1 bit a pixel, CCITT Group 4; each page a black bar of its own length.
    const bars = await Promise.all([0, 1, 2, 3].map((i) => sharp({ create: { width: 64, height: 48, channels: 3, background: '#fff' } }).composite([{ input: { create: { width: 10 + i * 10, height: 10, channels: 3, background: '#000' } }, top: 5 + i * 5, left: 5 }]).png().toBuffer()));
    made.push(['CCITT Group 4, 1 bit', await sharp(bars, { join: { animated: true } }).extractChannel(0).tiff({ compression: 'ccittfax4', bitdepth: 1 }).toBuffer()]);
    made.push(['big-endian, 4 strips a page', generateTiff({ pages: 4, order: 'MM', width: 20, height: 17, rowsPerStrip: 5 }).bytes]);
    made.push(['little-endian, one strip', generateTiff({ pages: 4 }).bytes]);
    for (const [name, bytes] of made) {
      const path = file(bytes);
      const pages = new TiffPages();
      // The page is handed over as a TIFF of its own (not left to the file read).
      expect((await sharp((await pages.page(path, 2)) ?? Buffer.alloc(0)).metadata()).pages, name).toBe(1);
      for (const page of [3, 1, 4, 2]) {
        const own = await pixels(path, page, pages);
        expect(own.equals(await filePage(path, page)), `${name} page ${page}`).toBe(true);
      }
      // Pages differ (the comparison is not of one page with itself).
      expect((await pixels(path, 1, pages)).equals(await pixels(path, 2, pages)), name).toBe(false);
    }
  });

  it.skipIf(!existsSync('/proc/self/io'))('the 300 pages of a TIFF rendered in turn: each directory read once (reads grow with the pages, not their square)', async () => {
    const pages = 300;
    const path = file(generateTiff({ pages, width: 16, height: 16 }).bytes);
    const tiffPages = new TiffPages();
    const before = readCalls();
    for (let page = 1; page <= pages; page++) await renderImagePage({ path, page, longestSide: 64, format: 'png' }, tiffPages);
    const reads = readCalls() - before;
    // Before: libvips read the 300 directories for every page (~200,000 read calls).
    expect(reads).toBeLessThan(pages * 20);
    expect(tiffPages.directoriesRead).toBe(pages);
  });

  it.skipIf(!existsSync('/proc/self/io'))('the last page of a TIFF of 20,000 pages: the chain is walked in blocks, fewer read calls than pages (were two a directory)', async () => {
    const path = file(generateTiff({ pages: 20_000, width: 8, height: 8 }).bytes);
    const tiffPages = new TiffPages();
    const before = readCalls();
    const page = await tiffPages.page(path, 20_000);
    expect(readCalls() - before).toBeLessThan(2_000);
    expect(tiffPages.directoriesRead).toBe(20_000);
    expect(page).not.toBeNull();
    expect((await pixels(path, 20_000, tiffPages)).equals(await filePage(path, 20_000))).toBe(true);
  });

  it('a directory or a strip outside the file, a page past the end (a loop ends the chain): RENDER_FAILED naming the page', async () => {
    const { bytes, directories, strips } = generateTiff({ pages: 4 });
    const nextOf = (at: number) => at + 2 + 9 * 12;
    const looped = Buffer.from(bytes);
    looped.writeUInt32LE(directories[1] as number, nextOf(directories[2] as number)); // page 3 -> page 2
    const outside = Buffer.from(bytes);
    outside.writeUInt32LE(bytes.length + 1000, nextOf(directories[1] as number));
    const stripOutside = Buffer.from(bytes);
    stripOutside.writeUInt32LE(bytes.length - 10, (directories[2] as number) + 2 + 5 * 12 + 8);
    expect(strips[2]?.[0]).toBeGreaterThan(0);
    const render = (b: Buffer, page: number) => renderImagePage({ path: file(b), page, longestSide: 64, format: 'png' }, new TiffPages()).catch((e: unknown) => e);
    // Page 3 -> page 2 ends the chain after page 3, as libtiff ends it.
    expect(await render(looped, 4)).toMatchObject({ code: 'RENDER_FAILED', message: expect.stringMatching(/page 4: the file's directory chain ends after page 3/) });
    expect(await render(outside, 3)).toMatchObject({ code: 'RENDER_FAILED', message: expect.stringMatching(/page 3: its directory at byte \d+ lies outside the file/) });
    expect(await render(stripOutside, 3)).toMatchObject({ code: 'RENDER_FAILED', message: expect.stringMatching(/page 3: strip 1 at byte \d+ \(1024 bytes\) lies outside the file/) });
    expect(await render(bytes, 5)).toMatchObject({ code: 'RENDER_FAILED', message: expect.stringMatching(/page 5: the file's directory chain ends after page 4/) });
    // The pages before the damage, and every page of the looped chain, render.
    expect(await render(outside, 2)).toMatchObject({ width: 32, height: 32 });
    expect(await render(looped, 3)).toMatchObject({ width: 32, height: 32 });
  });

  it("a tag's value outside the file that libvips does without (XResolution): each page renders as libvips reads it from the file", async () => {
    const { bytes, directories } = generateTiff({ pages: 2 });
    const damaged = xResolutionOutside(bytes, directories);
    const path = file(damaged);
    const tiffPages = new TiffPages();
    // Was: RENDER_FAILED 'TIFF page N: the value of tag 282 at byte ... lies outside the file'.
    for (const page of [1, 2]) expect((await pixels(path, page, tiffPages)).equals(await filePage(path, page)), `page ${page}`).toBe(true);
  });

  it('a page whose directory points many values at the same bytes (300 values of 1 MB in a file of 1 MB) is not copied into 300 MB: left to libvips, it still renders', async () => {
    // One 32x32 grey page; its directory holds one private tag (UNDEFINED) 300 times over, each
    // naming the same 1 MB of the file as its value (libtiff keeps the first: the file is read at
    // enqueue and by libvips in a few MB). Was: the page copied every value, a 315 MB buffer
    // (4,096 entries: 4 GB) for a file of 1 MB.
    const width = 32;
    const height = 32;
    const valueBytes = 1024 * 1024;
    const fields: Array<[number, number, number, number]> = [[256, 4, 1, width], [257, 4, 1, height], [258, 3, 1, 8], [259, 3, 1, 1], [262, 3, 1, 1], [273, 4, 1, 0], [277, 3, 1, 1], [278, 4, 1, height], [279, 4, 1, width * height]];
    for (let i = 0; i < 300; i++) fields.push([65000, 7, valueBytes, 8]);
    const dirAt = 8 + valueBytes;
    const dataAt = dirAt + 2 + fields.length * 12 + 4;
    const bytes = Buffer.alloc(dataAt + width * height);
    bytes.write('II', 0, 'latin1');
    bytes.writeUInt16LE(42, 2);
    bytes.writeUInt32LE(dirAt, 4);
    bytes.writeUInt16LE(fields.length, dirAt);
    fields.forEach(([tag, type, count, value], k) => {
      const e = dirAt + 2 + k * 12;
      bytes.writeUInt16LE(tag, e);
      bytes.writeUInt16LE(type, e + 2);
      bytes.writeUInt32LE(count, e + 4);
      if (type === 3) bytes.writeUInt16LE(value, e + 8);
      else bytes.writeUInt32LE(tag === 273 ? dataAt : value, e + 8);
    });
    for (let i = 0; i < width * height; i++) bytes[dataAt + i] = (i * 7) % 256;
    const path = file(bytes);
    const tiffPages = new TiffPages();
    const page = await tiffPages.page(path, 1);
    expect(page?.length ?? 0).toBeLessThanOrEqual(bytes.length);
    expect((await pixels(path, 1, tiffPages)).equals(await filePage(path, 1))).toBe(true);
  });

  it('a page of 4,000,000 strips listed as SHORT values (16 MB of file) is looked at in place: the worker stays within a 48 MB heap', () => {
    // Its StripOffsets and StripByteCounts are 2 bytes a value; were turned into two arrays of
    // JS numbers (8 bytes a value: 64 MB, ~8x the file with the copies). Every strip is empty and
    // at byte 8, so the pieces add up to nothing and the page passed the size checks. The page's
    // copy (its offsets rewritten as 4-byte words: 16 MB more) would exceed the file: left to libvips.
    const n = 4_000_000;
    const fields: Array<[number, number, number, number]> = [[256, 4, 1, 1], [257, 4, 1, n], [258, 3, 1, 8], [259, 3, 1, 1], [262, 3, 1, 1], [273, 3, n, 0], [277, 3, 1, 1], [278, 4, 1, 1], [279, 3, n, 0]];
    const offsetsAt = 8 + 2 + fields.length * 12 + 4;
    const countsAt = offsetsAt + 2 * n;
    const bytes = Buffer.alloc(countsAt + 2 * n + 16);
    bytes.write('II', 0, 'latin1');
    bytes.writeUInt16LE(42, 2);
    bytes.writeUInt32LE(8, 4);
    bytes.writeUInt16LE(fields.length, 8);
    fields.forEach(([tag, type, count, value], k) => {
      const e = 10 + k * 12;
      bytes.writeUInt16LE(tag, e);
      bytes.writeUInt16LE(type, e + 2);
      bytes.writeUInt32LE(count, e + 4);
      if (tag === 273 || tag === 279) bytes.writeUInt32LE(tag === 273 ? offsetsAt : countsAt, e + 8);
      else if (type === 3) bytes.writeUInt16LE(value, e + 8);
      else bytes.writeUInt32LE(value, e + 8);
    });
    for (let i = 0; i < n; i++) bytes.writeUInt16LE(8, offsetsAt + 2 * i);
    const path = file(bytes);
    const module = join(import.meta.dirname, '../../src/render/tiff-page.ts');
    const script = `const { TiffPages } = await import(${JSON.stringify(module)}); const page = await new TiffPages().page(${JSON.stringify(path)}, 1); console.log(JSON.stringify({ bytes: page?.length ?? null }));`;
    // Was: the child ran out of its heap (V8's fatal error, SIGABRT).
    const out = execFileSync(process.execPath, ['--max-old-space-size=48', '--input-type=module', '-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(JSON.parse(out)).toEqual({ bytes: null });
  });

  it('a page naming both strip and tile offsets (libtiff reads the tiles: the later tag) renders as the file does', async () => {
    // 16x16 grey, its StripOffsets naming pixels of 10, its TileOffsets (read last by libtiff,
    // whether TileWidth is there or not) pixels of 200. Was: the strips were moved into the page,
    // the tile offsets left naming bytes of the file: RENDER_FAILED (read error) for a page the
    // file renders.
    const side = 16;
    for (const shape of ['tiles', 'tiles and TileWidth'] as const) {
      const fields: Array<[number, number, number, number]> = [[256, 4, 1, side], [257, 4, 1, side], [258, 3, 1, 8], [259, 3, 1, 1], [262, 3, 1, 1], [273, 4, 1, 0], [277, 3, 1, 1], [278, 4, 1, side], [279, 4, 1, side * side]];
      if (shape === 'tiles and TileWidth') fields.push([322, 3, 1, side], [323, 3, 1, side]);
      fields.push([324, 4, 1, 1], [325, 4, 1, side * side]);
      const strips = 8 + 2 + fields.length * 12 + 4;
      const tiles = strips + side * side;
      const bytes = Buffer.alloc(tiles + side * side);
      bytes.write('II', 0, 'latin1');
      bytes.writeUInt16LE(42, 2);
      bytes.writeUInt32LE(8, 4);
      bytes.writeUInt16LE(fields.length, 8);
      fields.forEach(([tag, type, count, value], k) => {
        const e = 10 + k * 12;
        bytes.writeUInt16LE(tag, e);
        bytes.writeUInt16LE(type, e + 2);
        bytes.writeUInt32LE(count, e + 4);
        const v = tag === 273 || tag === 324 ? (value === 1 ? tiles : strips) : value;
        if (type === 3) bytes.writeUInt16LE(v, e + 8);
        else bytes.writeUInt32LE(v, e + 8);
      });
      bytes.fill(10, strips, tiles);
      bytes.fill(200, tiles);
      const path = file(bytes);
      const own = await pixels(path, 1, new TiffPages());
      expect(own.equals(await filePage(path, 1)), shape).toBe(true);
    }
  });

  it('an image that is no TIFF is read from its file as before', async () => {
    const png = await sharp({ create: { width: 12, height: 9, channels: 3, background: '#336699' } }).png().toBuffer();
    const path = join(dir, 'page.png');
    writeFileSync(path, png);
    expect(await renderImagePage({ path, page: 1, longestSide: 64, format: 'png' }, new TiffPages())).toMatchObject({ width: 12, height: 9 });
  });
});

describe('TIFF pages asked for all at once (a document task)', () => {
  it('400 pages at once: every page, each directory read once (one walk of the chain at a time)', async () => {
    const pages = 400;
    const path = file(generateTiff({ pages, width: 8, height: 8 }).bytes);
    const tiffPages = new TiffPages();
    const got = await Promise.all(Array.from({ length: pages }, (_, i) => tiffPages.page(path, i + 1)));
    expect(got.every((b) => b !== null)).toBe(true);
    expect(tiffPages.directoriesRead).toBe(pages);
    const first = await sharp(got[0] as Buffer).raw().toBuffer();
    const last = await sharp(got[pages - 1] as Buffer).raw().toBuffer();
    expect(first.equals(last)).toBe(false);
  });
});

describe('the gate of TiffPages (FILES_AT_ONCE pages read at a time)', () => {
  it('a slot freed goes to the first waiter: one that arrives before the waiter has run waits too (was: both went in, five at once)', async () => {
    const gate = new Gate(4);
    for (let i = 0; i < 4; i++) await gate.acquire();
    let waiterIn = false;
    const waiter = gate.acquire().then(() => {
      waiterIn = true;
    });
    let lateIn = false;
    gate.release();
    // In the same turn as the release, before the waiter has run.
    const late = gate.acquire().then(() => {
      lateIn = true;
    });
    await waiter;
    expect(waiterIn).toBe(true);
    expect(gate.held).toBe(4);
    expect(lateIn).toBe(false);
    gate.release();
    await late;
    expect(gate.held).toBe(4);
    for (let i = 0; i < 4; i++) gate.release();
    expect(gate.held).toBe(0);
  });
});
