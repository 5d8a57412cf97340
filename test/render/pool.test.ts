import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { DocbatchError } from '../../src/errors.ts';
import { RENDERER_NAMES, type RendererName } from '../../src/render/image.ts';
import { RenderPool, type RenderedPage, type RenderRequest } from '../../src/render/pool.ts';
import { corpusFile, hugeImagePdf, pagesPdf, tempDir, textPage, failure } from './fixtures.ts';

/**
 * Every check runs for each engine alone (fallback off), so neither hides behind the other.
 * 2 renderers each: the machine has 2 cores, and the two pools take turns test by test.
 */
const pools: Record<RendererName, RenderPool> = {
  pdfium: new RenderPool({ size: 2, renderer: 'pdfium', fallback: false }),
  pdfjs: new RenderPool({ size: 2, renderer: 'pdfjs', fallback: false }),
};
const tmp = tempDir('render');

afterAll(async () => {
  await Promise.all(Object.values(pools).map((p) => p.close()));
  tmp.cleanup();
});

function request(name: string, page: number, extra: Partial<RenderRequest> = {}): RenderRequest {
  return { path: corpusFile(name), blobId: name, page, format: 'png', ...extra };
}


/** Decodes the image and checks it says what RenderedPage says. */
async function checkImage(page: RenderedPage): Promise<void> {
  const meta = await sharp(page.image).metadata();
  expect(meta.format).toBe(page.mime === 'image/png' ? 'png' : 'jpeg');
  expect(meta.width).toBe(page.width);
  expect(meta.height).toBe(page.height);
  // White background, no alpha: a vision model never sees a transparent page. Grey pages are
  // 1-channel PNGs (image.ts: the same pixels once decoded to RGB).
  expect(meta.hasAlpha).toBe(false);
  expect(meta.channels).toBe(page.mime === 'image/png' && meta.channels === 1 ? 1 : 3);
}

describe.each(RENDERER_NAMES)('%s', (renderer) => {
  const pool = pools[renderer];

  describe('rendering the corpus', () => {
    // Every page of every file, except two long ones: a sample of freeculture.pdf (352 pages)
    // and of TAMReview.pdf (23 pages), first and last pages included.
    const files: Array<[string, number[]]> = [
      ['tracemonkey.pdf', range(14)],
      ['TAMReview.pdf', [1, 2, 5, 9, 13, 17, 22, 23]],
      ['freeculture.pdf', [1, 2, 50, 117, 200, 351, 352]],
      ['issue5481.pdf', range(3)],
      ['images.pdf', [1]],
      ['cmykjpeg.pdf', [1]],
      ['issue11922_reduced.pdf', [1]],
      ['xfa_filled_imm1344e.pdf', [1]],
      ['ThuluthFeatures.pdf', [1]],
      ['alphatrans.pdf', [1]],
      ['asciihexdecode.pdf', [1]],
      ['issue9105_reduced.pdf', [1]],
      ['empty.pdf', [1]],
      ['rotation.pdf', range(2)],
      ['sizes.pdf', range(3)],
    ];

    it.each(files)('%s: every page renders with the longest side exactly 1288 px', async (name, pages) => {
      const rendered = await Promise.all(pages.map((p) => pool.render(request(name, p, { text: false }))));
      for (const page of rendered) {
        expect(Math.max(page.width, page.height)).toBe(1288);
        expect(page.mime).toBe('image/png');
        await checkImage(page);
      }
    });

    it('matches the aspect ratio of each page of a mixed-size file', async () => {
      const expected = [
        [612, 792],
        [649, 323],
        [792, 612],
      ] as const;
      for (const [i, [w, h]] of expected.entries()) {
        const page = await pool.render(request('sizes.pdf', i + 1));
        expect([page.widthPt, page.heightPt]).toEqual([w, h]);
        // Within the rounding of the short side to whole pixels.
        expect(Math.abs(page.width / page.height - w / h)).toBeLessThan(1.5 / Math.min(page.width, page.height));
      }
    });

    it('renders a /Rotate 90 page turned, as it is displayed', async () => {
      const upright = await pool.render(request('rotation.pdf', 1));
      const turned = await pool.render(request('rotation.pdf', 2));
      expect(upright).toMatchObject({ width: 995, height: 1288, rotation: 0, widthPt: 612, heightPt: 792 });
      expect(turned).toMatchObject({ width: 1288, height: 995, rotation: 90, widthPt: 792, heightPt: 612 });
    });

    it('paints an empty page white', async () => {
      const page = await pool.render(request('empty.pdf', 1));
      const { data, info } = await sharp(page.image).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
      expect(info.channels).toBe(3);
      expect(data.every((v) => v === 255)).toBe(true);
      expect(page.text).toBe('');
    });

    it('renders the static page of an XFA form, never the XFA layout', async () => {
      const page = await pool.render(request('xfa_filled_imm1344e.pdf', 1));
      const stats = await sharp(page.image).stats();
      // Not blank: the static page has content (a blank page has a standard deviation of 0).
      expect(stats.channels[0]!.stdev).toBeGreaterThan(5);
      // The static page of this XFA-only form is Adobe's placeholder; XFA would replace it.
      expect(page.text).toMatch(/^Please wait/);
    });

    it('gives JPEG at the requested quality, and skips the text layer on request', async () => {
      const low = await pool.render(request('tracemonkey.pdf', 2, { format: 'jpeg', quality: 30, text: false }));
      const high = await pool.render(request('tracemonkey.pdf', 2, { format: 'jpeg', quality: 95, text: false }));
      expect(low.mime).toBe('image/jpeg');
      await checkImage(low);
      expect(low.image.length).toBeLessThan(high.image.length);
      expect(low.text).toBe('');
    });

    it('honours another longest side', async () => {
      const page = await pool.render(request('sizes.pdf', 2, { longestSide: 640 }));
      expect([page.width, page.height]).toEqual([640, 319]);
    });
  });

  describe('the text layer', () => {
    it('holds the words of tracemonkey page 1, as an independent extractor reads them', async () => {
      const page = await pool.render(request('tracemonkey.pdf', 1));
      const ours = new Set(words(page.text));
      const reference = words(independentText(corpusFile('tracemonkey.pdf'), 1)).filter((w) => w.length >= 4);
      expect(reference.length).toBeGreaterThan(100);
      const found = reference.filter((w) => ours.has(w));
      expect(found.length / reference.length).toBeGreaterThan(0.9);
      // Lines, not one run-on string: the title is on a line of its own.
      expect(page.text.split('\n').length).toBeGreaterThan(50);
      expect(page.text.split('\n')[0]).toMatch(/^Trace-based Just-in-Time/);
    });
  });

  describe('documents stay open per renderer', () => {
    it('opens a book once however many of its pages are rendered one after another', async () => {
      const local = new RenderPool({ size: 2, renderer, fallback: false });
      try {
        for (let p = 10; p < 17; p++) await local.render(request('freeculture.pdf', p, { text: false }));
        expect(local.stats()).toMatchObject({ rendered: 7, documentsOpened: 1 });
      } finally {
        await local.close();
      }
    });

    it('gives each of two documents queued one after the other its own renderer: each is opened once', async () => {
      const local = new RenderPool({ size: 2, renderer, fallback: false });
      try {
        await local.warm();
        // All of one document, then all of the other: the second renderer leaves the first
        // document to the first renderer and starts on the second.
        const pages = [
          ...[1, 2].map((p) => local.render(request('tracemonkey.pdf', p, { text: false }))),
          ...[1, 2].map((p) => local.render(request('TAMReview.pdf', p, { text: false }))),
        ];
        await Promise.all(pages);
        // Without the spread the second renderer takes tracemonkey p. 2: four opens.
        expect(local.stats().rendered).toBe(4);
        // Two opens; three when a renderer finishes while the other is still starting a page (a
        // scheduling race on a loaded machine); without the spread, four.
        expect(local.stats().documentsOpened).toBeLessThanOrEqual(3);
      } finally {
        await local.close();
      }
    });

    it('routes pages of interleaved documents to the renderer that has them open', async () => {
      // One open document per renderer: without affinity every page would reopen its file.
      const local = new RenderPool({ size: 2, maxOpenDocuments: 1, renderer, fallback: false });
      try {
        await local.warm();
        const pages = [];
        for (let p = 1; p <= 7; p++) {
          pages.push(local.render(request('freeculture.pdf', 20 + p, { text: false })));
          pages.push(local.render(request('TAMReview.pdf', p, { text: false })));
        }
        await Promise.all(pages);
        expect(local.stats().rendered).toBe(14);
        expect(local.stats().documentsOpened).toBeLessThanOrEqual(4);
      } finally {
        await local.close();
      }
    });
  });

  describe('passwords and missing files', () => {
    it('renders issue6010_1.pdf with its password, PDF_BAD_PASSWORD with a wrong one, PDF_ENCRYPTED without', async () => {
      const ok = await pool.render(request('issue6010_1.pdf', 1, { password: 'abc' }));
      expect(Math.max(ok.width, ok.height)).toBe(1288);
      expect((await failure(pool.render(request('issue6010_1.pdf', 1, { password: 'nope' })))).code).toBe('PDF_BAD_PASSWORD');
      expect((await failure(pool.render(request('issue6010_1.pdf', 1)))).code).toBe('PDF_ENCRYPTED');
    });

    it('BLOB_MISSING when the file is gone from the blob store', async () => {
      const err = await failure(pool.render({ path: join(tmp.dir, 'gone.pdf'), blobId: 'gone', page: 1, format: 'png' }));
      expect(err.code).toBe('BLOB_MISSING');
      expect(err.place?.page).toBe(1);
    });

    it('RENDER_FAILED for a page the document does not have', async () => {
      const err = await failure(pool.render(request('sizes.pdf', 4)));
      expect(err.code).toBe('RENDER_FAILED');
      expect(err.message).toMatch(/page 4 does not exist/);
    });

    it('rejects a malformed request with a TypeError naming the field', async () => {
      await expect(pool.render(request('sizes.pdf', 0))).rejects.toThrow(TypeError);
      await expect(pool.render(request('sizes.pdf', 0))).rejects.toThrow(/page must be an integer/);
      await expect(pool.render(request('sizes.pdf', 1, { longestSide: 0 }))).rejects.toThrow(/longestSide/);
      await expect(pool.render({ ...request('sizes.pdf', 1), format: 'gif' as 'png' })).rejects.toThrow(/format/);
    });
  });

  describe('bad inputs', () => {
    it('renders a 14400 x 14400 pt page at the target size, not at 72 dpi', async () => {
      const path = tmp.write('big.pdf', pagesPdf([textPage(14_400, 14_400, ['Hello from a very big page'], 600)]));
      const page = await pool.render({ path, blobId: 'big', page: 1, format: 'png' });
      expect(page).toMatchObject({ width: 1288, height: 1288, widthPt: 14_400, heightPt: 14_400 });
      expect(page.text).toContain('Hello from a very big page');
    });

    it('leaves out an embedded image above maxImagePixels instead of decoding 400 MB', async () => {
      const path = tmp.write('huge-image.pdf', hugeImagePdf(20_000));
      const page = await pool.render({ path, blobId: 'huge-image', page: 1, format: 'png' });
      expect(page.renderMs).toBeLessThan(10_000);
      expect(Math.max(page.width, page.height)).toBe(1288);
    });

    it('never runs a CVE-2024-4367-style FontMatrix payload', async () => {
      const marker = join(tmp.dir, 'pwned');
      const payload = `(0\\); process.getBuiltinModule\\('fs'\\).writeFileSync\\('${marker}', 'x'\\); //)`;
      const font = `<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /FontMatrix [0.001 0 0 0.001 0 ${payload}] >>`;
      const path = tmp.write('fontmatrix.pdf', pagesPdf([textPage(300, 300, ['payload'])], [], font));
      const paths = new RenderPool({ size: 1, renderer: 'pdfjs', fallback: false, fontRendering: 'paths' });
      try {
        for (const renderer of [pool, paths]) {
          const outcome = await renderer.render({ path, blobId: 'fontmatrix', page: 1, format: 'png' }).then(
            () => 'rendered',
            (err: DocbatchError) => err.code,
          );
          expect(['rendered', 'RENDER_FAILED']).toContain(outcome);
        }
      } finally {
        await paths.close();
      }
      expect(existsSync(marker)).toBe(false);
    });

    it('PAGE_TOO_LARGE when the pixel cap would shrink the image below readability', async () => {
      const tiny = new RenderPool({ size: 1, maxPixels: 50_000, renderer, fallback: false });
      try {
        const err = await failure(tiny.render(request('sizes.pdf', 1)));
        expect(err.code).toBe('PAGE_TOO_LARGE');
        // A cap that only trims: scaled down to fit, not failed.
        const fits = await tiny.render(request('sizes.pdf', 1, { longestSide: 300 }));
        expect(fits.width * fits.height).toBeLessThanOrEqual(50_000);
      } finally {
        await tiny.close();
      }
    });
  });

});

describe('the two engines agree', () => {
  it('on the lines of the text layer (tracemonkey 1-3: the same lines in the same order)', async () => {
    for (const page of [1, 2, 3]) {
      const [a, b] = await Promise.all(RENDERER_NAMES.map((r) => pools[r].render(request('tracemonkey.pdf', page))));
      const lines = (t: string) => t.split('\n').map((l) => l.replace(/\s+/g, '')).filter((l) => l !== '');
      const [la, lb] = [lines(a!.text), lines(b!.text)];
      expect(la.length).toBe(lb.length);
      const same = la.filter((l, i) => l === lb[i]).length;
      expect(same / la.length, `page ${page}`).toBeGreaterThan(0.95);
    }
  });

  it('on the picture: size, orientation and where the ink is', async () => {
    for (const [name, page] of [['tracemonkey.pdf', 1], ['rotation.pdf', 2], ['sizes.pdf', 2], ['alphatrans.pdf', 1]] as const) {
      const [a, b] = await Promise.all(RENDERER_NAMES.map((r) => pools[r].render(request(name, page, { text: false }))));
      expect([a!.width, a!.height, a!.rotation], name).toEqual([b!.width, b!.height, b!.rotation]);
      const thumb = (image: Buffer) => sharp(image).greyscale().resize(124, 124, { fit: 'fill' }).raw().toBuffer();
      const [ta, tb] = await Promise.all([thumb(a!.image), thumb(b!.image)]);
      expect(correlation(ta, tb), name).toBeGreaterThan(0.9);
    }
  });
});

function correlation(x: Buffer, y: Buffer): number {
  const n = x.length;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i]!;
    my += y[i]!;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    const a = x[i]! - mx;
    const b = y[i]! - my;
    sxy += a * b;
    sx += a * a;
    sy += b * b;
  }
  return sxy / Math.sqrt(sx * sy);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

function words(text: string): string[] {
  return text.split(/[^\p{L}\p{N}]+/u).filter((w) => w !== '');
}

/**
 * The page's text from poppler's pdftotext when installed, otherwise from pdf.js items
 * without docbatch's line joining (still a check that lines are joined without losing words).
 */
function independentText(path: string, page: number): string {
  if (spawnSync('pdftotext', ['-v'], { stdio: 'ignore' }).error === undefined) {
    return execFileSync('pdftotext', ['-f', String(page), '-l', String(page), '-enc', 'UTF-8', path, '-'], { encoding: 'utf8' });
  }
  return execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const pdfjs = await import('pdfjs-dist/legacy/build/pdf.mjs');
       const fs = await import('node:fs');
       const task = pdfjs.getDocument({ data: new Uint8Array(fs.readFileSync(${JSON.stringify(path)})), verbosity: 0 });
       const doc = await task.promise;
       const content = await (await doc.getPage(${page})).getTextContent();
       process.stdout.write(content.items.map((i) => i.str).join(' '));
       await task.destroy();`,
    ],
    { encoding: 'utf8', cwd: join(import.meta.dirname, '../..') },
  );
}
