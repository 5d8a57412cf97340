/**
 * The page encoder (image.ts) with real sharp: a grey page becomes a 1-channel PNG that decodes
 * to exactly the RGB pixels it was given (PNG is lossless; only the bytes and the encoding time
 * shrink); a page with one coloured pixel stays RGB; nothing ever has alpha.
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { encodeImage, greyChannel, type PageJob } from '../../src/render/image.ts';

const job: PageJob = { page: 1, format: 'png', quality: 85, text: false, longestSide: 64, maxPixels: 25_000_000, minLongestSide: 16, pngCompressionLevel: 1 };

/** Opaque RGBA with a grey ramp, like anti-aliased text; `colour` paints one pixel red. */
function page(width: number, height: number, colour = false): Buffer {
  const rgba = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    const v = (i * 37) % 256;
    rgba.set([v, v, v, 255], i * 4);
  }
  if (colour) rgba.set([200, 10, 10, 255], (width * height - 1) * 4);
  return rgba;
}

async function decodeRgb(png: Buffer): Promise<Buffer> {
  return sharp(png).toColourspace('srgb').removeAlpha().raw().toBuffer();
}

function rgbOf(rgba: Buffer): Buffer {
  const out = Buffer.alloc((rgba.length / 4) * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) out.set([rgba[i]!, rgba[i + 1]!, rgba[i + 2]!], j);
  return out;
}

describe('encodeImage', () => {
  it('writes a grey page as a 1-channel PNG that decodes to the very same RGB pixels', async () => {
    const rgba = page(61, 47);
    const png = await encodeImage(rgba, 61, 47, job);
    const meta = await sharp(png).metadata();
    expect([meta.format, meta.channels, meta.hasAlpha, meta.width, meta.height]).toEqual(['png', 1, false, 61, 47]);
    expect((await decodeRgb(png)).equals(rgbOf(rgba))).toBe(true);
  });

  it('keeps a page with a single coloured pixel in RGB, pixel for pixel', async () => {
    const rgba = page(61, 47, true);
    const png = await encodeImage(rgba, 61, 47, job);
    const meta = await sharp(png).metadata();
    expect([meta.channels, meta.hasAlpha]).toEqual([3, false]);
    expect((await decodeRgb(png)).equals(rgbOf(rgba))).toBe(true);
  });

  it('reads pixels at any byte offset (a Buffer slice of a larger one)', () => {
    const big = Buffer.concat([Buffer.alloc(3), page(5, 5)]);
    const slice = big.subarray(3);
    expect(slice.byteOffset % 4).not.toBe(0);
    expect(greyChannel(slice, 25)).toEqual(greyChannel(Buffer.from(page(5, 5)), 25));
    expect(greyChannel(Buffer.from(page(5, 5, true)), 25)).toBeUndefined();
  });

  it('gives JPEG for format jpeg, RGB without alpha', async () => {
    const jpeg = await encodeImage(page(61, 47), 61, 47, { ...job, format: 'jpeg' });
    const meta = await sharp(jpeg).metadata();
    expect([meta.format, meta.hasAlpha]).toEqual(['jpeg', false]);
  });
});
