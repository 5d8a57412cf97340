/**
 * What the producer needs to know about a PDF before it enqueues pages: runs inside a child
 * (child.ts), called through PdfInspector (src/ingest/pdf.ts).
 *
 * PDFium answers first (pdfium-inspect.ts: it loads in a fifth of pdf.js's time and reads page
 * dictionaries faster). Whatever PDFium does not read cleanly (it cannot open the file, had to
 * rebuild its cross-reference table, misses a page) is decided by pdf.js, loaded only then, with
 * the codes and messages below. After a PDFium trap this child inspects with pdf.js alone.
 */
import { readFile } from 'node:fs/promises';
import { DocbatchError } from '../errors.ts';
import { round2 } from './geometry.ts';
import { loadPdfium, PdfiumPoisoned } from './pdfium.ts';
import { checkPageCount } from './page-count.ts';
import { inspectWithPdfium } from './pdfium-inspect.ts';
import type { InspectResult } from './protocol.ts';
import { cutText } from '../printable.ts';

let pdfiumUsable = true;

/** Loads PDFium at the child's start (once per process), so the first file does not wait for it. */
export async function prepareInspection(): Promise<void> {
  await loadPdfium();
}

export async function inspectDocument(path: string, password: string | undefined, maxPageSizes: number, maxPages: number): Promise<InspectResult> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    throw new DocbatchError('FILE_UNREADABLE', `cannot read the file: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (pdfiumUsable) {
    try {
      const info = inspectWithPdfium(await loadPdfium(), data, password, maxPageSizes, maxPages);
      if (info) return withShortTitle(info);
    } catch (err) {
      if (!(err instanceof PdfiumPoisoned)) throw err;
      // Its memory may be inconsistent: this child does not call into it again.
      pdfiumUsable = false;
    }
  }
  return withShortTitle(await inspectWithPdfjs(data, password, maxPageSizes, maxPages));
}

/** The most characters of a title kept (a real one is a line; longer ones are cut, ending in …). */
export const MAX_TITLE_CHARS = 1024;

/**
 * The title goes into the document's record in Redis (read by status, the dashboard, the writer)
 * and its report: a 20 KB PDF whose Info dictionary sits in a compressed object stream gave a
 * 20,000,000-character title, 1000 times its size, into every record made of it.
 */
function withShortTitle(info: InspectResult): InspectResult {
  if (info.title === null || info.title.length <= MAX_TITLE_CHARS) return info;
  return { ...info, title: cutText(info.title, MAX_TITLE_CHARS) };
}

async function inspectWithPdfjs(data: Buffer, password: string | undefined, maxPageSizes: number, maxPages: number): Promise<InspectResult> {
  const { classifyOpenError, errorText, openDocument } = await import('./pdfjs.ts');
  let opened;
  try {
    opened = await openDocument(new Uint8Array(data), { fonts: 'paths', ...(password === undefined ? {} : { password }) });
  } catch (err) {
    const failure = classifyOpenError(err);
    if (failure === 'need-password') {
      throw new DocbatchError('PDF_ENCRYPTED', 'the PDF is encrypted; give its password', { cause: err });
    }
    if (failure === 'bad-password') {
      throw new DocbatchError('PDF_BAD_PASSWORD', 'the given password does not open the PDF', { cause: err });
    }
    throw new DocbatchError('PDF_CORRUPT', `pdf.js cannot open it: ${errorText(err)}`, { cause: err });
  }
  const { task, doc } = opened;
  try {
    const pages = doc.numPages;
    if (!(pages > 0)) throw new DocbatchError('PDF_NO_PAGES', 'the PDF opens but has no pages');
    checkPageCount(pages, data.length, maxPages);

    let title: string | null = null;
    let encrypted = password !== undefined && password !== '';
    let xfa = false;
    try {
      const meta = await doc.getMetadata();
      const info = meta.info as { Title?: unknown; EncryptFilterName?: unknown; IsXFAPresent?: unknown };
      encrypted ||= typeof info.EncryptFilterName === 'string';
      xfa = info.IsXFAPresent === true;
      const candidates = [info.Title, meta.metadata?.get('dc:title')];
      title = candidates.map((t) => (typeof t === 'string' ? t.trim() : '')).find((t) => t !== '') ?? null;
    } catch {
      // Metadata is optional; a document with a broken Info dictionary still renders.
    }

    // Every page dictionary is read (cheap: no content stream is parsed), so a document whose
    // page tree is damaged is rejected here instead of failing page by page in the workers.
    const sizes: NonNullable<InspectResult['pageSizes']> = [];
    for (let n = 1; n <= pages; n++) {
      let page;
      try {
        page = await doc.getPage(n);
      } catch (err) {
        throw new DocbatchError('PDF_CORRUPT', `page ${n} of ${pages} cannot be read: ${errorText(err)}`, { cause: err });
      }
      if (pages <= maxPageSizes) {
        const viewport = page.getViewport({ scale: 1 });
        sizes.push({ widthPt: round2(viewport.width), heightPt: round2(viewport.height) });
      }
    }
    return { pages, encrypted, title, xfa, ...(pages <= maxPageSizes ? { pageSizes: sizes } : {}), reader: 'pdfjs' };
  } finally {
    await task.destroy().catch(() => {});
  }
}
