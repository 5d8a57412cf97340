/**
 * The per-renderer document cache, run in the test process with real pdf.js (what a renderer
 * child does, without the child).
 */
import { GlobalFonts } from '@napi-rs/canvas';
import { afterAll, describe, expect, it } from 'vitest';
import { DocumentCache } from '../../src/render/documents.ts';
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
