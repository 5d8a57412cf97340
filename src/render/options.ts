/**
 * RenderPool's options with their defaults, and the check of each render request. Bad values
 * are programming or configuration errors: they throw a TypeError naming the option.
 */
import { RENDERER_NAMES, type PageJob, type RendererName } from './image.ts';
import type { FontRendering } from './pdfjs.ts';

export interface RenderPoolOptions {
  /** Renderer processes. @defaultValue os.availableParallelism() */
  size?: number;
  /** The engine that draws pages: PDFium (WebAssembly) or pdf.js. @defaultValue 'pdfium' */
  renderer?: RendererName;
  /**
   * A page that fails or crashes (RENDER_FAILED, RENDER_CRASHED, RENDER_TIMEOUT) in `renderer`
   * is drawn again by the other engine before it fails. @defaultValue true
   */
  fallback?: boolean;
  /**
   * Resident memory of all renderers together, in MB: above it idle renderers are let go, then
   * the largest busy one is killed (RENDER_CRASHED). @defaultValue size × maxRssMb
   */
  maxTotalRssMb?: number;
  /** Wall-clock limit of one page, including opening its document; the renderer is killed after it. @defaultValue 30_000 */
  pageTimeoutMs?: number;
  /** Most pixels (width × height) a page image may have; larger images are scaled down to fit. @defaultValue 25_000_000 */
  maxPixels?: number;
  /** The smallest longest side the pixel cap may shrink an image to (or half the requested side, if smaller) before the page fails with PAGE_TOO_LARGE. @defaultValue 512 */
  minLongestSide?: number;
  /** Pages a renderer renders before it is replaced by a fresh one. @defaultValue 500 */
  maxPagesPerRenderer?: number;
  /** Resident memory of one renderer, in MB: killed above it (RENDER_CRASHED, out of memory); recycled after a page above 3/4 of it. @defaultValue 2048 */
  maxRssMb?: number;
  /** V8 heap limit of a renderer (`--max-old-space-size`), in MB. @defaultValue 1024 */
  maxHeapMb?: number;
  /** Embedded images above this many pixels are left out of the render (pdf.js `maxImageSize`). @defaultValue 100_000_000 */
  maxImagePixels?: number;
  /** Documents each renderer keeps open (LRU by blob id). @defaultValue 8 */
  maxOpenDocuments?: number;
  /** zlib level of PNG images, 0–9: 1 is several times faster to encode than 6 for ~15 % more bytes. @defaultValue 1 */
  pngCompressionLevel?: number;
  /** How often a busy renderer's resident memory is read, in ms. @defaultValue 100 */
  rssPollMs?: number;
  /**
   * How glyphs are drawn: 'native' registers pdf.js's rebuilt fonts with Skia (about twice as
   * fast on text); 'paths' draws each glyph as a JavaScript-built path, so no font data from a
   * PDF reaches FreeType (docs/rendering.md, security).
   * @defaultValue 'native'
   */
  fontRendering?: FontRendering;
}

export type ResolvedPoolOptions = Required<RenderPoolOptions>;

/** One page to render (RenderPool.render); checked by validateRequest. */
export interface RenderRequest {
  /** The PDF in the blob store. */
  path: string;
  /** Its sha256: lets a renderer keep the document open between pages. */
  blobId: string;
  /** 1-based. */
  page: number;
  password?: string;
  /** The image's longest side in pixels. @defaultValue 1288 */
  longestSide?: number;
  format: 'png' | 'jpeg';
  /** JPEG quality. @defaultValue 85 */
  quality?: number;
  /** Also extract the page's text layer. @defaultValue true */
  text?: boolean;
}


const OTHER: Record<RendererName, RendererName> = { pdfium: 'pdfjs', pdfjs: 'pdfium' };

/** The engine a page falls back to. */
export function otherRenderer(name: RendererName): RendererName {
  return OTHER[name];
}

export const DEFAULT_LONGEST_SIDE = 1288;
export const DEFAULT_JPEG_QUALITY = 85;
/** No page image is ever larger than this on a side, whatever the request asks. */
const MAX_LONGEST_SIDE = 16_384;

export function validatePoolOptions(options: RenderPoolOptions, cores: number): ResolvedPoolOptions {
  const resolved: ResolvedPoolOptions = {
    size: cores,
    renderer: 'pdfium',
    fallback: true,
    maxTotalRssMb: 0, // size × maxRssMb, below
    pageTimeoutMs: 30_000,
    maxPixels: 25_000_000,
    minLongestSide: 512,
    maxPagesPerRenderer: 500,
    maxRssMb: 2048,
    maxHeapMb: 1024,
    maxImagePixels: 100_000_000,
    maxOpenDocuments: 8,
    pngCompressionLevel: 1,
    rssPollMs: 100,
    fontRendering: 'native',
  };
  for (const [key, value] of Object.entries(options) as Array<[keyof RenderPoolOptions, unknown]>) {
    if (value === undefined) continue;
    if (!(key in resolved)) throw new TypeError(`RenderPool: unknown option ${key}`);
    if (key === 'renderer') {
      if (!RENDERER_NAMES.includes(value as RendererName)) {
        throw new TypeError(`RenderPool: option renderer must be ${RENDERER_NAMES.map((n) => `'${n}'`).join(' or ')}, got ${String(value)}`);
      }
      resolved.renderer = value as RendererName;
      continue;
    }
    if (key === 'fallback') {
      if (typeof value !== 'boolean') throw new TypeError(`RenderPool: option fallback must be a boolean, got ${String(value)}`);
      resolved.fallback = value;
      continue;
    }
    if (key === 'fontRendering') {
      if (value !== 'native' && value !== 'paths') throw new TypeError(`RenderPool: option fontRendering must be 'native' or 'paths', got ${String(value)}`);
      resolved.fontRendering = value;
      continue;
    }
    const min = key === 'pngCompressionLevel' ? 0 : 1;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      throw new TypeError(`RenderPool: option ${key} must be an integer >= ${min}, got ${String(value)}`);
    }
    resolved[key] = value;
  }
  if (resolved.maxTotalRssMb === 0) resolved.maxTotalRssMb = resolved.size * resolved.maxRssMb;
  if (resolved.pngCompressionLevel > 9) {
    throw new TypeError(`RenderPool: option pngCompressionLevel must be 0–9, got ${resolved.pngCompressionLevel}`);
  }
  return resolved;
}

export function validateRequest(request: RenderRequest, options: ResolvedPoolOptions): PageJob {
  const fail = (what: string, value: unknown) => {
    throw new TypeError(`RenderPool.render: ${what}, got ${JSON.stringify(value)}`);
  };
  if (typeof request.path !== 'string' || request.path === '') fail('path must be a file path', request.path);
  if (typeof request.blobId !== 'string' || request.blobId === '') fail('blobId must be a non-empty string', request.blobId);
  if (!Number.isInteger(request.page) || request.page < 1) fail('page must be an integer >= 1', request.page);
  if (request.format !== 'png' && request.format !== 'jpeg') fail("format must be 'png' or 'jpeg'", request.format);
  const longestSide = request.longestSide ?? DEFAULT_LONGEST_SIDE;
  if (!Number.isInteger(longestSide) || longestSide < 1 || longestSide > MAX_LONGEST_SIDE) {
    fail(`longestSide must be an integer from 1 to ${MAX_LONGEST_SIDE}`, longestSide);
  }
  const quality = request.quality ?? DEFAULT_JPEG_QUALITY;
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) fail('quality must be an integer from 1 to 100', quality);
  return {
    page: request.page,
    format: request.format,
    quality,
    text: request.text ?? true,
    longestSide,
    maxPixels: options.maxPixels,
    minLongestSide: options.minLongestSide,
    pngCompressionLevel: options.pngCompressionLevel,
  };
}
