/**
 * Passwords of AES-256 PDFs (revision 6) typed in another Unicode form than the one the PDF was
 * encrypted with: the renderers and the inspection, with real PDFium and pdf.js.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { DocumentCache, PdfiumDocuments } from '../../src/render/documents.ts';
import { inspectDocument } from '../../src/render/inspect.ts';
import { renderPdfiumPage } from '../../src/render/pdfium-page.ts';
import { aes256Pdf } from '../helpers/pdf-aes256.ts';
import { tempDir } from './fixtures.ts';

const tmp = tempDir('password');
afterAll(() => tmp.cleanup());

const composed = 'pässwörd'.normalize('NFC');
const decomposed = composed.normalize('NFD');
const job = { format: 'png' as const, quality: 85, text: true, longestSide: 400, maxPixels: 25_000_000, minLongestSide: 512, pngCompressionLevel: 1 };

describe('an AES-256 PDF whose password is typed decomposed (NFD), encrypted composed (SASLprep: NFKC)', () => {
  const path = tmp.write('r6.pdf', aes256Pdf(composed, 'Opened with the password'));

  it('opens in PDFium, which draws the page and reads its text', async () => {
    expect(decomposed).not.toBe(composed);
    const cache = new PdfiumDocuments(1);
    try {
      const page = await renderPdfiumPage(await cache.get({ path, blobId: 'r6', password: decomposed }), { ...job, page: 1 });
      expect(page.text).toBe('Opened with the password');
    } finally {
      await cache.close();
    }
  });

  it('opens in pdf.js too, so the fallback agrees', async () => {
    const cache = new DocumentCache(1, 100_000_000, 'paths');
    try {
      await expect(cache.get({ path, blobId: 'r6', password: decomposed })).resolves.toBeDefined();
    } finally {
      await cache.close();
    }
  });

  it('is read at enqueue by PDFium, not only by the pdf.js fallback', async () => {
    expect(await inspectDocument(path, decomposed, 10, 100)).toMatchObject({ pages: 1, encrypted: true, reader: 'pdfium' });
  });

  it('still says PDF_BAD_PASSWORD for a wrong password, and PDF_ENCRYPTED for none', async () => {
    const cache = new PdfiumDocuments(1);
    try {
      await expect(cache.get({ path, blobId: 'r6', password: 'passwerd' })).rejects.toMatchObject({ code: 'PDF_BAD_PASSWORD' });
      await expect(cache.get({ path, blobId: 'r6' })).rejects.toMatchObject({ code: 'PDF_ENCRYPTED' });
    } finally {
      await cache.close();
    }
  });
});
