/**
 * What a renderer is asked for (PageJob) and what it gives back (PageOutput), and the one
 * encoder both page renderers (pdf.js: page.ts, PDFium: pdfium-page.ts) hand their pixels to.
 *
 * Pixels arrive as straight RGBA, every pixel opaque (pages are drawn on white), and leave as
 * PNG or JPEG without alpha. A PNG of a page whose pixels are all grey (R = G = B: most text
 * pages) is written as a 1-channel greyscale PNG: lossless, so a model that decodes it to RGB
 * gets exactly the pixels of the 3-channel image, for a fifth of the encoding work.
 */
import sharp from 'sharp';
import { DocbatchError } from '../errors.ts';
import type { SizeLimits } from './geometry.ts';

/** The page renderers docbatch has. */
export type RendererName = 'pdfium' | 'pdfjs';
export const RENDERER_NAMES: readonly RendererName[] = ['pdfium', 'pdfjs'];

export interface PageJob extends SizeLimits {
  page: number;
  format: 'png' | 'jpeg';
  quality: number;
  text: boolean;
  pngCompressionLevel: number;
}

export interface PageOutput {
  image: Buffer;
  mime: 'image/png' | 'image/jpeg';
  /** Pixels. */
  width: number;
  height: number;
  /** The page's text layer in reading order ('' when none). */
  text: string;
  /** The page as displayed (after /Rotate), in points. */
  widthPt: number;
  heightPt: number;
  /** The page's /Rotate, in degrees clockwise. */
  rotation: number;
  /** Milliseconds in the renderer; child.ts counts opening the document in. */
  renderMs: number;
  /** Which renderer drew the page. */
  renderer: RendererName;
  /**
   * Set when the page was drawn by the fallback renderer after the first one failed or
   * crashed: that failure as `CODE: message` (the pool sets it; a child never does).
   */
  fallbackFrom?: string;
}

/**
 * sharp runs inside a renderer that owns one core: more vips threads would only compete with
 * the other renderers. Its operation cache would hold pages we never see again.
 */
export function configureSharp(): void {
  sharp.concurrency(1);
  sharp.cache(false);
}

/**
 * Encodes opaque straight-alpha RGBA pixels (`rgba` is not kept after the promise settles, and
 * not touched by anything else meanwhile). `limitInputPixels` is the job's pixel cap.
 */
export function encodeImage(rgba: Buffer, width: number, height: number, job: PageJob): Promise<Buffer> {
  const grey = job.format === 'png' ? greyChannel(rgba, width * height) : undefined;
  return grey ? encodeGrey(grey, width, height, job) : encodeRgba(rgba, width, height, job);
}

/** A PNG of one grey byte a pixel (from greyChannel). */
export async function encodeGrey(grey: Buffer, width: number, height: number, job: PageJob): Promise<Buffer> {
  try {
    return await sharp(grey, { raw: { width, height, channels: 1 }, limitInputPixels: job.maxPixels })
      .toColourspace('b-w')
      .png({ compressionLevel: job.pngCompressionLevel, adaptiveFiltering: false })
      .toBuffer();
  } catch (err) {
    throw encodeError(err);
  }
}

/** PNG or JPEG of the RGBA pixels, alpha dropped (every pixel is opaque). */
export async function encodeRgba(rgba: Buffer, width: number, height: number, job: PageJob): Promise<Buffer> {
  const input = sharp(rgba, { raw: { width, height, channels: 4, premultiplied: false }, limitInputPixels: job.maxPixels }).removeAlpha();
  try {
    return job.format === 'png'
      ? await input.png({ compressionLevel: job.pngCompressionLevel, adaptiveFiltering: false }).toBuffer()
      : await input.jpeg({ quality: job.quality, chromaSubsampling: '4:4:4' }).toBuffer();
  } catch (err) {
    throw encodeError(err);
  }
}

function encodeError(err: unknown): DocbatchError {
  return new DocbatchError('RENDER_FAILED', `cannot encode the page image: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/**
 * The pixels as one grey byte each when every pixel has R = G = B, else undefined (it stops at
 * the first coloured pixel). About 2-3 ms for a 995 x 1288 page; encoding it then costs a fifth
 * of the RGB image (3 ms instead of 15 at zlib level 1).
 */
export function greyChannel(rgba: Buffer, pixels: number): Buffer | undefined {
  const grey = Buffer.allocUnsafe(pixels);
  if (rgba.byteOffset % 4 === 0) {
    const words = new Uint32Array(rgba.buffer, rgba.byteOffset, pixels);
    for (let i = 0; i < pixels; i++) {
      const p = words[i]!; // little-endian: 0xAABBGGRR; R = G and G = B at once
      if (((p ^ (p >>> 8)) & 0xffff) !== 0) return undefined;
      grey[i] = p & 0xff;
    }
    return grey;
  }
  for (let i = 0, j = 0; i < pixels; i++, j += 4) {
    const r = rgba[j]!;
    if (rgba[j + 1] !== r || rgba[j + 2] !== r) return undefined;
    grey[i] = r;
  }
  return grey;
}
