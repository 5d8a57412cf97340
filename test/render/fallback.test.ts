/**
 * A page that fails or crashes in one engine is drawn by the other, with real children and
 * real files: a decompression bomb that pdf.js decodes past its memory cap (PDFium streams
 * it), and a renderer killed mid-page in each direction. Also: what both engines refuse fails
 * once, naming both; what they share (passwords, missing files) is not tried twice.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { RENDERER_NAMES } from '../../src/render/image.ts';
import { otherRenderer } from '../../src/render/options.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { validateRequest, validatePoolOptions } from '../../src/render/options.ts';
import { documentParameters } from '../../src/render/pdfjs.ts';
import { RenderPool } from '../../src/render/pool.ts';
import { RendererProcess } from '../../src/render/renderer-process.ts';
import { childPids, corpusFile, failure, hugeImagePdf, pagesPdf, slowPage, tempDir, textPage } from './fixtures.ts';

const tmp = tempDir('fallback');
afterAll(() => tmp.cleanup());

async function waitFor(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('fallback between engines', () => {
  it('a decompression bomb that pdf.js decodes past its memory cap is drawn by PDFium', async () => {
    // The image limit is lifted so pdf.js decodes all 400 MB; PDFium draws the image scaled.
    const pool = new RenderPool({ size: 1, renderer: 'pdfjs', maxImagePixels: 1_000_000_000, maxRssMb: 700 });
    try {
      const bomb = { path: tmp.write('huge.pdf', hugeImagePdf(20_000)), blobId: 'huge', page: 1, format: 'png' as const };
      const page = await pool.render(bomb);
      expect(page.renderer).toBe('pdfium');
      expect(page.fallbackFrom).toMatch(/^RENDER_CRASHED: .*out of memory/);
      expect(pool.stats()).toMatchObject({ fallbacks: 1, crashed: 1 });
    } finally {
      await pool.close();
    }
  });

  it.each(RENDERER_NAMES)('a %s renderer killed mid-page: the page is drawn by the other engine', async (renderer) => {
    const pool = new RenderPool({ size: 1, renderer, pageTimeoutMs: 60_000 });
    try {
      await pool.warm();
      const [pid] = childPids('render');
      // Long enough to be killed in the middle (about a second in either engine).
      const slow = { path: tmp.write(`slow-${renderer}.pdf`, pagesPdf([slowPage(5000)])), blobId: 'slow', page: 1, format: 'png' as const };
      const pending = pool.render(slow);
      await waitFor(() => pool.stats().busy === 1);
      await new Promise((r) => setTimeout(r, 100));
      process.kill(pid!, 'SIGKILL');
      const page = await pending;
      expect(page.renderer).toBe(otherRenderer(renderer));
      expect(page.fallbackFrom).toMatch(/^RENDER_CRASHED: .*SIGKILL/);
      expect(page.width).toBe(1288);
      expect(pool.stats()).toMatchObject({ fallbacks: 1, crashed: 1, rendered: 1 });
    } finally {
      await pool.close();
    }
  });

  it('a file both engines refuse fails once, with both reasons', async () => {
    const pool = new RenderPool({ size: 1 });
    try {
      const err = await failure(pool.render({ path: corpusFile('bug1020226.pdf'), blobId: 'bug', page: 1, format: 'png' }));
      expect(err.code).toBe('RENDER_FAILED');
      expect(err.message).toMatch(/^pdfjs: pdf\.js cannot open the PDF.*\(after pdfium failed: RENDER_FAILED: PDFium cannot open the PDF/);
      expect(err.place?.page).toBe(1);
      expect(pool.stats()).toMatchObject({ fallbacks: 1 });
    } finally {
      await pool.close();
    }
  });

  it('no second try for what both engines share: a wrong password, a missing file', async () => {
    const pool = new RenderPool({ size: 1 });
    try {
      const wrong = await failure(pool.render({ path: corpusFile('issue6010_1.pdf'), blobId: 'enc', page: 1, format: 'png', password: 'nope' }));
      expect(wrong.code).toBe('PDF_BAD_PASSWORD');
      const gone = await failure(pool.render({ path: `${tmp.dir}/gone.pdf`, blobId: 'gone', page: 1, format: 'png' }));
      expect(gone.code).toBe('BLOB_MISSING');
      expect(pool.stats().fallbacks).toBe(0);
    } finally {
      await pool.close();
    }
  });
});

describe('pdf.js as the fallback keeps its security settings', () => {
  it('opens every document with eval and XFA off (one set of parameters for both roles)', () => {
    const parameters = documentParameters(new Uint8Array(0), {}) as Record<string, unknown>;
    expect(parameters).toMatchObject({ enableXfa: false, isEvalSupported: false, useSystemFonts: false });
  });

  it('inside a renderer started for PDFium: the XFA form shows its static page, a FontMatrix payload never runs', async () => {
    // What a fallback page is: a request for pdf.js sent to a renderer whose engine is PDFium.
    const child = new RendererProcess({ mode: 'render', heapMb: 512, settings: { maxOpenDocuments: 4, maxImagePixels: 100_000_000, fonts: 'native', renderer: 'pdfium' } });
    try {
      await child.ready;
      const job = (page: number) => validateRequest({ path: 'x', blobId: 'x', page, format: 'png' }, validatePoolOptions({}, 1));
      const xfa = await child.request<'rendered'>({ type: 'render', path: corpusFile('xfa_filled_imm1344e.pdf'), blobId: 'xfa', job: job(1), renderer: 'pdfjs' });
      expect(xfa.page.renderer).toBe('pdfjs');
      expect(xfa.page.text).toMatch(/^Please wait/);
      const marker = join(tmp.dir, 'pwned');
      const payload = `(0\\); process.getBuiltinModule\\('fs'\\).writeFileSync\\('${marker}', 'x'\\); //)`;
      const font = `<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /FontMatrix [0.001 0 0 0.001 0 ${payload}] >>`;
      const path = tmp.write('fontmatrix.pdf', pagesPdf([textPage(300, 300, ['payload'])], [], font));
      await child.request<'rendered'>({ type: 'render', path, blobId: 'fm', job: job(1), renderer: 'pdfjs' }).catch(() => undefined);
      expect(existsSync(marker)).toBe(false);
    } finally {
      child.kill();
      await child.exited;
    }
  });
});
