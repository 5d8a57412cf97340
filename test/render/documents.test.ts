/**
 * The per-renderer document caches, run in the test process with real pdf.js and real PDFium
 * (what a renderer child does, without the child).
 */
import { GlobalFonts } from '@napi-rs/canvas';
import { afterAll, describe, expect, it } from 'vitest';
import { DocumentCache, PdfiumDocuments } from '../../src/render/documents.ts';
import { renderPdfiumPage } from '../../src/render/pdfium-page.ts';
import { CanvasHolder, renderPage } from '../../src/render/page.ts';
import { corpusFile, tempDir } from './fixtures.ts';

const tmp = tempDir('documents');
afterAll(() => tmp.cleanup());

const key = (name: string, password?: string) => ({ path: corpusFile(name), blobId: name, password });
const job = { format: 'png' as const, quality: 85, text: true, longestSide: 400, maxPixels: 25_000_000, minLongestSide: 512, pngCompressionLevel: 1 };

describe('DocumentCache', () => {
  it('keeps the most recently used documents open, up to its capacity', async () => {
    const cache = new DocumentCache(2, 100_000_000, 'paths');
    try {
      const first = await cache.get(key('sizes.pdf'));
      expect(await cache.get(key('sizes.pdf'))).toBe(first);
      await cache.get(key('rotation.pdf'));
      await cache.get(key('sizes.pdf')); // now the most recent
      await cache.get(key('empty.pdf')); // evicts rotation.pdf
      expect(cache.blobIds().sort()).toEqual(['empty.pdf', 'sizes.pdf']);
      expect(cache.opened).toBe(3);
      await cache.get(key('rotation.pdf'));
      expect(cache.opened).toBe(4);
    } finally {
      await cache.close();
    }
  });

  it('keys documents by password too, so a wrong password never rides on a right one', async () => {
    const cache = new DocumentCache(4, 100_000_000, 'paths');
    try {
      await cache.get(key('issue6010_1.pdf', 'abc'));
      await expect(cache.get(key('issue6010_1.pdf', 'wrong'))).rejects.toMatchObject({ code: 'PDF_BAD_PASSWORD' });
      await expect(cache.get(key('issue6010_1.pdf'))).rejects.toMatchObject({ code: 'PDF_ENCRYPTED' });
      // Failed opens are not kept.
      expect(cache.blobIds()).toEqual(['issue6010_1.pdf']);
    } finally {
      await cache.close();
    }
  });

  it('BLOB_MISSING for a file that is not there, RENDER_FAILED for one pdf.js cannot open', async () => {
    const cache = new DocumentCache(1, 100_000_000, 'paths');
    try {
      await expect(cache.get({ path: `${tmp.dir}/gone.pdf`, blobId: 'gone' })).rejects.toMatchObject({ code: 'BLOB_MISSING' });
      await expect(cache.get(key('bug1020226.pdf'))).rejects.toMatchObject({ code: 'RENDER_FAILED', message: /Invalid PDF structure/ });
    } finally {
      await cache.close();
    }
  });

  it('unregisters the fonts of documents it closes (native font rendering)', async () => {
    const fonts = () => GlobalFonts.families.length;
    const baseline = fonts();
    const cache = new DocumentCache(1, 100_000_000, 'native');
    const canvases = new CanvasHolder();
    try {
      const doc = await cache.get(key('tracemonkey.pdf'));
      const page = await renderPage(doc, { ...job, page: 1 }, canvases);
      expect(page.text).toMatch(/^Trace-based/);
      expect(fonts()).toBeGreaterThan(baseline);
      // Opening another document evicts tracemonkey.pdf and its fonts with it.
      await renderPage(await cache.get(key('empty.pdf')), { ...job, page: 1 }, canvases);
      expect(fonts()).toBe(baseline);
    } finally {
      await cache.close();
    }
    expect(fonts()).toBe(baseline);
  });
});

describe('PdfiumDocuments', () => {
  it('keeps documents open up to its capacity, by blob id and password, with the same codes as pdf.js', async () => {
    const cache = new PdfiumDocuments(2);
    try {
      const first = await cache.get(key('sizes.pdf'));
      expect(await cache.get(key('sizes.pdf'))).toBe(first);
      await cache.get(key('rotation.pdf'));
      await cache.get(key('empty.pdf')); // evicts sizes.pdf
      expect(cache.blobIds().sort()).toEqual(['empty.pdf', 'rotation.pdf']);
      expect(cache.opened).toBe(3);
      await cache.get(key('issue6010_1.pdf', 'abc'));
      await expect(cache.get(key('issue6010_1.pdf', 'wrong'))).rejects.toMatchObject({ code: 'PDF_BAD_PASSWORD' });
      await expect(cache.get(key('issue6010_1.pdf'))).rejects.toMatchObject({ code: 'PDF_ENCRYPTED' });
      await expect(cache.get({ path: `${tmp.dir}/gone.pdf`, blobId: 'gone' })).rejects.toMatchObject({ code: 'BLOB_MISSING' });
      await expect(cache.get(key('bug1020226.pdf'))).rejects.toMatchObject({ code: 'RENDER_FAILED', message: /PDFium cannot open the PDF/ });
    } finally {
      await cache.close();
    }
  });

  it('draws pages of a document it keeps open, with the text layer in lines', async () => {
    const cache = new PdfiumDocuments(1);
    try {
      const doc = await cache.get(key('tracemonkey.pdf'));
      const first = await renderPdfiumPage(doc, { ...job, page: 1 });
      expect(first).toMatchObject({ renderer: 'pdfium', width: 309, height: 400, rotation: 0, widthPt: 612, heightPt: 792 });
      expect(first.text.split('\n')[0]).toBe('Trace-based Just-in-Time Type Specialization for Dynamic');
      // End-of-line hyphens are kept as the page shows them (PDFium marks them specially).
      expect(first.text).toContain('more difficult to com-\npile');
      await expect(renderPdfiumPage(doc, { ...job, page: 15 })).rejects.toMatchObject({ code: 'RENDER_FAILED', message: /page 15 does not exist/ });
      expect(cache.opened).toBe(1);
    } finally {
      await cache.close();
    }
  });
});
