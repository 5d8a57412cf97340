/**
 * One page → one image and its text with PDFium, inside a renderer child (the default
 * renderer). Same contract as page.ts (pdf.js): the displayed page (after /Rotate) scaled so
 * its longest side is `longestSide` (geometry.ts, from PDFium's exact float page size), drawn on
 * white, stretched onto the whole bitmap, grey-scale anti-aliasing (no LCD text, whose coloured
 * fringes a vision model has never seen), annotations with appearance streams drawn as pdf.js
 * draws them.
 *
 * The text layer comes from PDFium's character API fed to text.ts's joinTextRuns, the line
 * logic the pdf.js path uses: each character is a run at its origin, with its advance (loose
 * box) as width and its direction from its matrix. PDFium's own GetText breaks lines at every
 * superscript and marks end-of-line hyphens specially; this keeps pdf.js's lines (bench/text-
 * layer.ts: 1790 of 1997 lines identical, the rest glyph garbage in both) at half the time of
 * pdf.js's getTextContent, from the page already loaded for drawing.
 */
import { DocbatchError } from '../errors.ts';
import { round2, targetSize } from './geometry.ts';
import { encodeGrey, encodeRgba, greyChannel, type PageJob, type PageOutput } from './image.ts';
import { guarded, type PdfiumApi, type PdfiumDocument } from './pdfium.ts';
import { joinTextRuns, type TextRun } from './text.ts';

/** FPDF_ANNOT | FPDF_REVERSE_BYTE_ORDER (RGBA bytes, as sharp reads them). */
const RENDER_FLAGS = 0x01 | 0x10;
/** FPDFBitmap_BGRA: 4 bytes a pixel. */
const BITMAP_BGRA = 4;

export async function renderPdfiumPage(doc: PdfiumDocument, job: PageJob): Promise<PageOutput> {
  const started = performance.now();
  if (!Number.isInteger(job.page) || job.page < 1 || job.page > doc.pages) {
    throw new DocbatchError('RENDER_FAILED', `page ${job.page} does not exist (the document has ${doc.pages})`);
  }
  const api = doc.api;
  const page = guarded('loading the page', () => api._FPDF_LoadPage(doc.handle, job.page - 1));
  if (!page) throw new DocbatchError('RENDER_FAILED', `PDFium cannot read page ${job.page}`);
  try {
    const widthPt = api._FPDF_GetPageWidthF(page);
    const heightPt = api._FPDF_GetPageHeightF(page);
    const rotation = ((api._FPDFPage_GetRotation(page) % 4) + 4) % 4 * 90;
    const size = targetSize({ widthPt, heightPt }, job);
    const image = await drawAndEncode(api, page, size.width, size.height, job);
    const text = job.text ? guarded('reading the text layer', () => readText(api, page)) : '';
    return {
      image,
      mime: job.format === 'png' ? 'image/png' : 'image/jpeg',
      width: size.width,
      height: size.height,
      text,
      widthPt: round2(widthPt),
      heightPt: round2(heightPt),
      rotation,
      renderMs: Math.round(performance.now() - started),
      renderer: 'pdfium',
    };
  } finally {
    guarded('closing the page', () => api._FPDF_ClosePage(page));
  }
}

/**
 * Draws the page into a bitmap in wasm memory and encodes it from there, without a copy: a
 * grey page is reduced to one byte a pixel in JavaScript first (and the bitmap freed at once);
 * a coloured one is read by sharp in place, so nothing may call into PDFium (which could grow
 * or reuse that memory) until the encoder is done, which is why the text layer comes after.
 */
async function drawAndEncode(api: PdfiumApi, page: number, width: number, height: number, job: PageJob): Promise<Buffer> {
  const bytes = width * height * 4;
  const buffer = api.wasmExports.malloc(bytes);
  if (buffer === 0) throw new DocbatchError('RENDER_FAILED', `PDFium has no room for a ${width} x ${height} bitmap in its 2 GiB`);
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    try {
      api.wasmExports.free(buffer);
    } catch {
      // PDFium trapped while drawing: the error on its way out says so (PdfiumPoisoned).
    }
  };
  try {
    guarded('drawing the page', () => {
      const bitmap = api._FPDFBitmap_CreateEx(width, height, BITMAP_BGRA, buffer, width * 4);
      if (!bitmap) throw new DocbatchError('RENDER_FAILED', `PDFium cannot make a ${width} x ${height} bitmap`);
      try {
        api._FPDFBitmap_FillRect(bitmap, 0, 0, width, height, 0xffffffff);
        api._FPDF_RenderPageBitmap(bitmap, page, 0, 0, width, height, 0, RENDER_FLAGS);
      } finally {
        api._FPDFBitmap_Destroy(bitmap);
      }
    });
    const rgba = Buffer.from(api.HEAPU8.buffer, buffer, bytes);
    const grey = job.format === 'png' ? greyChannel(rgba, width * height) : undefined;
    if (grey) {
      release();
      return await encodeGrey(grey, width, height, job);
    }
    return await encodeRgba(rgba, width, height, job);
  } finally {
    // Only once nothing reads it any more (sharp has settled, whether it succeeded or not).
    release();
  }
}

/** The text layer of a loaded page: its characters as text.ts runs, joined into lines. */
export function readText(api: PdfiumApi, page: number): string {
  const textPage = api._FPDFText_LoadPage(page);
  if (!textPage) return '';
  // One scratch block for the out-parameters: two doubles (origin), four floats (box), six floats (matrix).
  const scratch = api.wasmExports.malloc(64);
  try {
    return joinTextRuns(pdfiumRuns(api, textPage, scratch, visibleBox(api, page, scratch)));
  } finally {
    api.wasmExports.free(scratch);
    api._FPDFText_ClosePage(textPage);
  }
}

/**
 * The visible part of the page as [left, bottom, right, top], in page space: PDFium's own page
 * box (the crop box within the media box; the media box when the crop box has no area; US
 * Letter when the media box has none either), the one it draws. The raw /CropBox or /MediaBox
 * would be [0 0 0 0] on such pages, and every character would be dropped as outside it.
 */
function visibleBox(api: PdfiumApi, page: number, scratch: number): number[] | undefined {
  const f = scratch >> 2;
  // FS_RECTF: left, top, right, bottom.
  if (!api._FPDF_GetPageBoundingBox(page, scratch)) return undefined;
  const [x0, y1, x1, y0] = [api.HEAPF32[f]!, api.HEAPF32[f + 1]!, api.HEAPF32[f + 2]!, api.HEAPF32[f + 3]!];
  return [Math.min(x0, x1) - 1, Math.min(y0, y1) - 1, Math.max(x0, x1) + 1, Math.max(y0, y1) + 1];
}

/**
 * Characters outside the visible box are left out (printers' slugs and margin line numbers
 * beyond the crop box: not on the image, and pdf.js does not report them either).
 *
 * Vertical writing (a CJK font with /WMode 1, /Identity-V or a -V CMap) keeps the text matrix
 * of horizontal text while each character goes below the previous one; PDFium tells neither
 * the writing mode nor the direction. A font is taken as vertical once two characters of one
 * text object (one show operator) step down the matrix's vertical axis: its runs are then
 * oriented down that axis, so joinTextRuns keeps a column as one line, as it does pdf.js's
 * items (before, every character of a vertical column was a line of its own).
 */
function* pdfiumRuns(api: PdfiumApi, textPage: number, scratch: number, box: number[] | undefined): Generator<TextRun> {
  const count = api._FPDFText_CountChars(textPage);
  const verticalFonts = new Set<number>();
  let pending: Glyph | undefined;
  for (let i = 0; i < count; i++) {
    const code = api._FPDFText_GetUnicode(textPage, i);
    if (api._FPDFText_IsGenerated(textPage, i) === 1) {
      // PDFium's own spaces (word gaps made by positioning) are kept; its line breaks are not:
      // joinTextRuns decides lines from the baselines, as for pdf.js.
      if (code === 0x20 && pending && !/\s$/u.test(pending.str)) pending.str += ' ';
      continue;
    }
    if (code === 0x0d || code === 0x0a) continue;
    // PDFium reports an end-of-line hyphen as 0x02 (or U+FFFE) with IsHyphen set.
    const str = code === 0x02 || code === 0xfffe ? (api._FPDFText_IsHyphen(textPage, i) === 1 ? '-' : ' ') : charText(code);
    if (!api._FPDFText_GetCharOrigin(textPage, i, scratch, scratch + 8)) continue;
    const x = api.HEAPF64[scratch >> 3]!;
    const y = api.HEAPF64[(scratch >> 3) + 1]!;
    if (box && (x < box[0]! || y < box[1]! || x > box[2]! || y > box[3]!)) continue;
    let a = 1;
    let b = 0;
    if (api._FPDFText_GetMatrix(textPage, i, scratch + 16)) {
      a = api.HEAPF32[(scratch + 16) >> 2]!;
      b = api.HEAPF32[((scratch + 16) >> 2) + 1]!;
    }
    let boxWidth = 0;
    let boxHeight = 0;
    if (api._FPDFText_GetLooseCharBox(textPage, i, scratch + 40)) {
      const f = (scratch + 40) >> 2;
      const [left, top, right, bottom] = [api.HEAPF32[f]!, api.HEAPF32[f + 1]!, api.HEAPF32[f + 2]!, api.HEAPF32[f + 3]!];
      boxWidth = Math.abs(right - left);
      boxHeight = Math.abs(top - bottom);
    }
    const object = api._FPDFText_GetTextObject(textPage, i);
    const font = object ? api._FPDFTextObj_GetFont(object) : 0;
    const glyph: Glyph = { str, x, y, a, b, boxWidth, boxHeight, object, font };
    if (pending && object && pending.object === object && font && stepsDown(pending, glyph)) verticalFonts.add(font);
    if (pending) yield toRun(pending, verticalFonts.has(pending.font));
    pending = glyph;
  }
  if (pending) yield toRun(pending, verticalFonts.has(pending.font));
}

/** One character as PDFium gives it, before it is oriented into a run. */
interface Glyph {
  str: string;
  x: number;
  y: number;
  /** The text matrix's first column: the horizontal writing direction. */
  a: number;
  b: number;
  boxWidth: number;
  boxHeight: number;
  /** Its text object (0: none) and that object's font (0: none). */
  object: number;
  font: number;
}

/** `next` lies below `prev` along the matrix's vertical axis, (b, -a), rather than beside it. */
function stepsDown(prev: Glyph, next: Glyph): boolean {
  const n = Math.hypot(prev.a, prev.b) || 1;
  const [ax, ay] = [prev.a / n, prev.b / n];
  const ex = next.x - prev.x;
  const ey = next.y - prev.y;
  const down = ex * ay - ey * ax;
  const along = ex * ax + ey * ay;
  return down > 0 && Math.abs(along) < down / 2;
}

/** A glyph as a text.ts run, written along the matrix's horizontal axis or down its vertical one. */
function toRun(g: Glyph, vertical: boolean): TextRun {
  const [dx, dy] = vertical ? [g.b, -g.a] : [g.a, g.b];
  // The box is in page space: its side along the writing direction is the advance.
  const alongX = Math.abs(dx) >= Math.abs(dy);
  const width = alongX ? g.boxWidth : g.boxHeight;
  const height = alongX ? g.boxHeight : g.boxWidth;
  return { str: g.str, transform: [dx, dy, -dy, dx, g.x, g.y], width, height, hasEOL: false };
}

/** A character code as text: control codes (fonts with broken encodings) as a space. */
function charText(code: number): string {
  if (code < 0x20 || code === 0x7f) return ' ';
  if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return '\ufffd';
  return String.fromCodePoint(code);
}
