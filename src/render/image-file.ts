/**
 * Image documents (PNG, JPEG, TIFF, WebP) → the image the engine gets for one page: the frame
 * (TIFF pages are frames), turned upright by its EXIF orientation, scaled down so its longest
 * side is at most `longestSide` (never up: a small scan gains nothing from upscaling), encoded
 * as PNG or JPEG. sharp (libvips) decodes with its pixel limit on, so a decompression bomb fails
 * instead of allocating.
 */
import { DocbatchError } from '../errors.ts';
import type { TiffPages } from './tiff-page.ts';

/**
 * sharp (libvips) loads on first use: importing it takes ~120 ms, which a command that reads no
 * image file (an enqueue of PDFs, an export) does not pay.
 */
let sharpModule: Promise<typeof import('sharp')['default']> | undefined;
const loadSharp = () => (sharpModule ??= import('sharp').then((m) => m.default));

export interface ImagePageRequest {
  path: string;
  /** 1-based frame. */
  page: number;
  longestSide: number;
  format: 'png' | 'jpeg';
  quality?: number;
}

export interface RenderedImage {
  image: Buffer;
  mime: string;
  width: number;
  height: number;
  renderMs: number;
}

/** Pixels an image may have before it is refused (as a page of 14400 x 14400 pt at 72 dpi would be). */
export const MAX_INPUT_PIXELS = 200_000_000;

/**
 * With `tiffPages` (kept by the caller across the pages of its documents), a TIFF's page is
 * handed to sharp as a TIFF of its own (tiff-page.ts): given the file, libvips reads every
 * directory of a multi-page TIFF for each page.
 */
export async function renderImagePage(request: ImagePageRequest, tiffPages?: TiffPages): Promise<RenderedImage> {
  const started = performance.now();
  const sharp = await loadSharp();
  try {
    const single = tiffPages ? await tiffPages.page(request.path, request.page) : null;
    const input = single ? sharp(single, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' }) : sharp(request.path, { page: request.page - 1, limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' });
    const pipeline = input
      .rotate()
      .resize({ width: request.longestSide, height: request.longestSide, fit: 'inside', withoutEnlargement: true });
    const encoded = request.format === 'jpeg' ? pipeline.jpeg({ quality: request.quality ?? 85 }) : pipeline.png({ compressionLevel: 3 });
    const { data, info } = await encoded.toBuffer({ resolveWithObject: true });
    return { image: data, mime: request.format === 'jpeg' ? 'image/jpeg' : 'image/png', width: info.width, height: info.height, renderMs: performance.now() - started };
  } catch (err) {
    if (err instanceof DocbatchError) throw err;
    throw new DocbatchError('RENDER_FAILED', `image page ${request.page} could not be decoded: ${(err as Error).message}`, { cause: err });
  }
}

/** Format and page (frame) count of an image file, or null when sharp cannot read it as one. */
export async function inspectImage(path: string): Promise<{ format: string; pages: number; width: number; height: number }> {
  const sharp = await loadSharp();
  const meta = await sharp(path, { limitInputPixels: MAX_INPUT_PIXELS }).metadata();
  return { format: meta.format ?? 'unknown', pages: meta.pages ?? 1, width: meta.width ?? 0, height: meta.height ?? 0 };
}
