/**
 * The one place that loads pdf.js and decides how documents are opened. Both the renderer
 * child and the inspection child go through `openDocument`, so the security settings below
 * hold for every PDF docbatch touches.
 *
 * Only child processes import this module (src/render/child.ts): pdf.js parses hostile bytes,
 * and a hang or a runaway allocation there must be killable without taking the caller down.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { PDFDocumentLoadingTask, PDFDocumentProxy } from 'pdfjs-dist';
import { nativeFontHost } from './fonts.ts';

type PdfJs = typeof import('pdfjs-dist/legacy/build/pdf.mjs');

let loaded: Promise<PdfJs> | undefined;

/**
 * The legacy build: the modern one needs Uint8Array.prototype.toHex, Math.sumPrecise and
 * Map.prototype.getOrInsertComputed, which Node 24 lacks (it throws at import).
 */
export function loadPdfJs(): Promise<PdfJs> {
  loaded ??= (async () => {
    // In Node pdf.js parses on a "fake worker" in this thread; handing it the worker module
    // up front makes the import part of start-up instead of the first document's open.
    const worker = await import('pdfjs-dist/legacy/build/pdf.worker.mjs');
    (globalThis as { pdfjsWorker?: unknown }).pdfjsWorker = worker;
    return import('pdfjs-dist/legacy/build/pdf.mjs');
  })();
  return loaded;
}

/** The pdfjs-dist package folder, so fonts, CMaps, ICC profiles and wasm decoders load offline. */
function assetDirs(): { standardFontDataUrl: string; cMapUrl: string; wasmUrl: string; iccUrl: string } {
  const root = dirname(createRequire(import.meta.url).resolve('pdfjs-dist/package.json'));
  // pdf.js appends file names to these, so each must end with a separator.
  const dir = (name: string) => `${join(root, name)}/`;
  return {
    standardFontDataUrl: dir('standard_fonts'),
    cMapUrl: dir('cmaps'),
    wasmUrl: dir('wasm'),
    iccUrl: dir('iccs'),
  };
}

export interface OpenOptions {
  password?: string;
  /**
   * Embedded images above this many pixels are not decoded (pdf.js `maxImageSize`); the page
   * renders without them. Bounds the memory a decompression bomb can claim.
   * @defaultValue 100_000_000
   */
  maxImagePixels?: number;
  /**
   * How glyphs are drawn. 'native': pdf.js's rebuilt fonts are registered with Skia and drawn
   * with fillText (glyph cache; about twice as fast on text pages). 'paths': every glyph is a
   * path built by pdf.js in JavaScript, so no font bytes from the PDF ever reach FreeType.
   * @defaultValue 'native'
   */
  fonts?: FontRendering;
}

export type FontRendering = 'native' | 'paths';

/**
 * Security settings (docs/rendering.md):
 * - `enableXfa: false`: XFA forms are never laid out; the static PDF page is rendered instead.
 * - No scripting: pdf.js only runs document JavaScript through the viewer's sandbox
 *   (pdf.sandbox.mjs), which docbatch never loads; annotation layers are never built.
 * - `isEvalSupported: false`: pdf.js 6 no longer has the eval path of CVE-2024-4367 and ignores
 *   the option; it is passed anyway so that an older pdf.js stays safe.
 * - `useSystemFonts: false`: no lookup of fonts on the host; missing fonts come from the
 *   standard fonts shipped in pdfjs-dist.
 * - Fonts: see `OpenOptions.fonts` and fonts.ts. Either way pdf.js rebuilds every embedded
 *   font itself first; 'paths' keeps FreeType away from PDF font data entirely.
 * - `isOffscreenCanvasSupported`/`isImageDecoderSupported: false`: no browser APIs in Node.
 */
export function documentParameters(data: Uint8Array, options: OpenOptions = {}): Parameters<PdfJs['getDocument']>[0] {
  const parameters = {
    data,
    password: options.password,
    ...assetDirs(),
    cMapPacked: true,
    enableXfa: false,
    isEvalSupported: false,
    useSystemFonts: false,
    ...(options.fonts === 'paths' ? { disableFontFace: true } : { disableFontFace: false, ownerDocument: nativeFontHost() }),
    isOffscreenCanvasSupported: false,
    isImageDecoderSupported: false,
    maxImageSize: options.maxImagePixels ?? 100_000_000,
    stopAtErrors: false,
    verbosity: 0,
  };
  return parameters;
}

export interface OpenedDocument {
  task: PDFDocumentLoadingTask;
  doc: PDFDocumentProxy;
}

/**
 * Opens a document from its bytes. The caller owns `task` and must `task.destroy()` it: in
 * pdf.js 6 the document proxy has no destroy of its own.
 */
export async function openDocument(data: Uint8Array, options: OpenOptions = {}): Promise<OpenedDocument> {
  const pdfjs = await loadPdfJs();
  const task = pdfjs.getDocument(documentParameters(data, options));
  try {
    const doc = await task.promise;
    return { task, doc };
  } catch (err) {
    await task.destroy().catch(() => {});
    throw err;
  }
}

/** pdf.js's own error classes travel as plain objects with a name; classify by name and code. */
export type OpenFailure = 'need-password' | 'bad-password' | 'invalid';

export function classifyOpenError(err: unknown): OpenFailure {
  const e = err as { name?: unknown; code?: unknown } | null;
  if (e?.name === 'PasswordException') return e.code === 2 ? 'bad-password' : 'need-password';
  return 'invalid';
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  const e = err as { message?: unknown } | null;
  return typeof e?.message === 'string' ? e.message : String(err);
}
