/**
 * The page-count bound of an inspection (inspect.ts with pdf.js, pdfium-inspect.ts with PDFium):
 * a page tree may name one page dictionary millions of times (/Kids repeating one reference,
 * nested: a few KB). Read page by page it kept the inspection child busy ~14 s and then out of
 * heap (PDF_CORRUPT after up to 30 s); PDFium, trusting a /Count below its own cap (1,048,575),
 * read a million such pages in ~1.5 s and passed the file for a million page jobs. Both readers take the
 * count from the tree's /Count, so it is checked before any page dictionary is read.
 */
import { DocbatchError } from '../errors.ts';

/** INPUT_MAX_PAGES's default (src/config.ts), for callers given no bound. */
export const DEFAULT_MAX_PAGES = 100_000;

export function checkPageCount(pages: number, bytes: number, maxPages: number): void {
  if (pages > maxPages) {
    throw new DocbatchError('PDF_TOO_MANY_PAGES', `the page tree claims ${pages} pages in ${bytes} bytes, more than INPUT_MAX_PAGES (${maxPages}); nothing read further (a page tree that repeats one page is a bomb; a real document this large: split it or raise INPUT_MAX_PAGES)`);
  }
}
