/**
 * A damaged multi-page TIFF is refused at enqueue (prepareFile, what `docbatch enqueue` runs on
 * each file) as IMAGE_CORRUPT, naming the file, the page and the byte, and nothing of it is
 * stored. Was: accepted (sharp reads a header; the enqueue walk stopped quietly at the damage),
 * then every page past the damage failed at the worker as RENDER_FAILED. The walk is the
 * worker's (src/render/tiff-chain.ts), so what enqueue refuses is what the worker would fail.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.ts';
import { prepareFile } from '../../src/ingest/prepare.ts';
import { tiffChain } from '../../src/ingest/tiff-pages.ts';
import { LocalBlobStore } from '../../src/store/blobs-local.ts';
import { generateTiff, xResolutionOutside } from '../../bench/lib/tiff-gen.ts';

const dir = mkdtempSync(join(tmpdir(), 'docbatch-tiff-damage-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
async function prepare(name: string, bytes: Buffer): Promise<{ result: unknown; file: string; stored: boolean }> {
  const file = join(dir, name);
  const blobs = join(dir, `blobs-${++n}`);
  writeFileSync(file, bytes);
  const result = await prepareFile(file, new LocalBlobStore(blobs), { chunkTokens: 1000, chunkOverlapTokens: 0 }).catch((err: unknown) => err);
  return { result, file, stored: existsSync(blobs) };
}

/** Byte offset of the next-directory pointer of a generated page's directory (9 entries). */
const nextOf = (at: number): number => at + 2 + 9 * 12;
/** Byte offset of the value of entry `k` of a generated page's directory. */
const valueOf = (at: number, k: number): number => at + 2 + k * 12 + 8;

describe('a damaged TIFF at enqueue', () => {
  it('a directory past the end of the file, a strip outside it: IMAGE_CORRUPT naming the file, the page and the byte; nothing stored', async () => {
    const { bytes, directories } = generateTiff({ pages: 4 });
    const pastEnd = Buffer.from(bytes);
    pastEnd.writeUInt32LE(bytes.length + 1000, nextOf(directories[1] as number)); // page 2 -> past the end
    const stripOutside = Buffer.from(bytes);
    stripOutside.writeUInt32LE(bytes.length - 10, valueOf(directories[2] as number, 5)); // page 3's StripOffsets

    const cases: Array<[string, Buffer, number, number, RegExp]> = [
      ['past-end.tiff', pastEnd, 3, bytes.length + 1000, /damaged at page 3: its directory at byte \d+ lies outside the file \(\d+ bytes\)/],
      ['strip-outside.tiff', stripOutside, 3, bytes.length - 10, /damaged at page 3: strip 1 at byte \d+ \(1024 bytes\) lies outside the file/],
    ];
    for (const [name, damaged, page, offset, message] of cases) {
      const { result, file, stored } = await prepare(name, damaged);
      expect(result, name).toBeInstanceOf(InputError);
      expect(result, name).toMatchObject({ code: 'IMAGE_CORRUPT', place: { file, page, offset }, message: expect.stringMatching(message) });
      expect(stored, name).toBe(false);
    }
    // The same file undamaged goes in, all its pages.
    expect((await prepare('intact.tiff', bytes)).result).toMatchObject({ kind: 'image', format: 'tiff', pages: 4 });
  });

  it('strips listed out of line (several a page), big-endian: the third strip of page 2 outside the file is found', async () => {
    const { bytes, directories } = generateTiff({ pages: 3, order: 'MM', width: 20, height: 17, rowsPerStrip: 5 });
    expect((await prepare('strips.tiff', bytes)).result).toMatchObject({ kind: 'image', pages: 3 });
    const damaged = Buffer.from(bytes);
    const arraysAt = damaged.readUInt32BE(valueOf(directories[1] as number, 5)); // page 2's StripOffsets array
    damaged.writeUInt32BE(bytes.length, arraysAt + 2 * 4); // its third strip starts at the end of the file
    const { result, file } = await prepare('strips-damaged.tiff', damaged);
    expect(result).toMatchObject({ code: 'IMAGE_CORRUPT', place: { file, page: 2, offset: bytes.length }, message: expect.stringMatching(/page 2: strip 3 at byte \d+ \(100 bytes\) lies outside the file/) });
    // The array of offsets itself outside the file: no reader has the page (libtiff refuses it too).
    const arrayOutside = Buffer.from(bytes);
    arrayOutside.writeUInt32BE(bytes.length + 100, valueOf(directories[1] as number, 5));
    const lost = await prepare('strip-array-outside.tiff', arrayOutside);
    expect(lost.result).toMatchObject({ code: 'IMAGE_CORRUPT', place: { file: lost.file, page: 2, offset: bytes.length + 100 }, message: expect.stringMatching(/page 2: the value of tag 273 at byte \d+ \(16 bytes\) lies outside the file/) });
  });

  it("a tag's value outside the file that libvips does without (XResolution): not damage, the file goes in, all its pages", async () => {
    const { bytes, directories } = generateTiff({ pages: 2 });
    const damaged = xResolutionOutside(bytes, directories);
    // libvips reads it (it ignores the value, with a warning).
    const control = join(dir, 'xres-control.tiff');
    writeFileSync(control, damaged);
    expect((await sharp(control, { page: 1, failOn: 'error' }).raw().toBuffer({ resolveWithObject: true })).info).toMatchObject({ width: 32, height: 32 });
    // Was: IMAGE_CORRUPT 'damaged at page 1: the value of tag 282 ... lies outside the file'.
    expect((await prepare('xres-outside.tiff', damaged)).result).toMatchObject({ kind: 'image', format: 'tiff', pages: 2 });
  });

  it('a chain that loops back ends there, as libtiff ends it: every page goes in, none twice (no page lies beyond a loop)', async () => {
    const { bytes, directories } = generateTiff({ pages: 4 });
    const atEnd = Buffer.from(bytes);
    atEnd.writeUInt32LE(directories[0] as number, nextOf(directories[3] as number)); // the last page -> the first
    const path = join(dir, 'loop-at-end.tiff');
    writeFileSync(path, atEnd);
    const chain = await tiffChain(path);
    expect(chain.pages.map((p) => p.page)).toEqual([1, 2, 3, 4]);
    expect(chain).toMatchObject({ complete: true });
    expect(chain.damage).toBeUndefined();
    // libvips reads the same file whole; enqueue takes its 4 pages (it refused it as IMAGE_CORRUPT before).
    expect((await sharp(path, { pages: -1, failOn: 'error' }).metadata()).pages).toBe(4);
    expect((await prepare('loop-at-end.tiff', atEnd)).result).toMatchObject({ kind: 'image', format: 'tiff', pages: 4 });
    // Page 3 -> page 2: pages 1-3, each once.
    const inner = Buffer.from(bytes);
    inner.writeUInt32LE(directories[1] as number, nextOf(directories[2] as number));
    expect((await prepare('loop-inside.tiff', inner)).result).toMatchObject({ kind: 'image', format: 'tiff', pages: 3 });
  });
});
