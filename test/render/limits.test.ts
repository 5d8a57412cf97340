/**
 * The pool's limits with real children: wall clock, crash, memory, recycling, abort, close.
 * Hostile pages are built by fixtures.ts; each test uses a small pool of its own. The limits
 * are checked for each engine alone (fallback off); fallback.test.ts checks the fallback.
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DocbatchError } from '../../src/errors.ts';
import { RENDERER_NAMES as RENDERERS } from '../../src/render/image.ts';
import { RenderPool, type RenderRequest } from '../../src/render/pool.ts';
import { childPids, corpusFile, formBombPdf, hugeImagePdf, pagesPdf, slowPage, tempDir, textPage, failure } from './fixtures.ts';

const tmp = tempDir('limits');
let slow: RenderRequest;
let slowFor: Record<'pdfium' | 'pdfjs', RenderRequest>;
let small: (page?: number) => RenderRequest;

beforeAll(() => {
  // About 15 s of Skia stroking on an idle core; every test stops it long before.
  slow = { path: tmp.write('slow.pdf', pagesPdf([slowPage(20_000)])), blobId: 'slow', page: 1, format: 'png', text: false };
  // PDFium strokes that page in ~1.5 s; three times the segments at 5000 px keep it busy ~4.5 s
  // with a 100 MB bitmap held all along: ~305 MB resident at the peak, from ~113 MB idle
  // (2026-12-04; a 300 MB cap was passed by 5 MB, and one fresh-clone run drew the page whole).
  slowFor = {
    pdfjs: slow,
    pdfium: { path: tmp.write('slower.pdf', pagesPdf([slowPage(60_000)])), blobId: 'slower', page: 1, format: 'png', text: false, longestSide: 5000 },
  };
  const pages = Array.from({ length: 8 }, (_, i) => textPage(300, 400, [`page ${i + 1}`]));
  const smallPath = tmp.write('small.pdf', pagesPdf(pages));
  small = (page = 1) => ({ path: smallPath, blobId: 'small', page, format: 'png' });
});

afterAll(() => tmp.cleanup());


async function waitFor(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(RENDERERS)('%s alone', (renderer) => {
  it('kills a page over pageTimeoutMs with RENDER_TIMEOUT, and the pool carries on', async () => {
    const pool = new RenderPool({ size: 1, pageTimeoutMs: 1500, renderer, fallback: false });
    try {
      await pool.warm();
      const before = childPids('render');
      const started = performance.now();
      const err = await failure(pool.render(slowFor[renderer]));
      expect(err.code).toBe('RENDER_TIMEOUT');
      expect(err.place?.page).toBe(1);
      expect(performance.now() - started).toBeLessThan(10_000);
      const page = await pool.render(small(2));
      expect(page.text).toBe('page 2');
      expect(pool.stats()).toMatchObject({ timedOut: 1, rendered: 1, renderers: 1, crashed: 0 });
      expect(childPids('render')).not.toEqual(before);
    } finally {
      await pool.close();
    }
  });

  it('a renderer that dies mid-page fails that page only; queued pages render on a new one', async () => {
    const pool = new RenderPool({ size: 1, pageTimeoutMs: 60_000, renderer, fallback: false });
    try {
      await pool.warm();
      const [pid] = childPids('render');
      const doomed = pool.render(slowFor[renderer]);
      const others = [1, 2, 3].map((p) => pool.render(small(p)));
      await waitFor(() => pool.stats().busy === 1);
      await new Promise((r) => setTimeout(r, 200));
      process.kill(pid!, 'SIGKILL');
      const err = await failure(doomed);
      expect(err.code).toBe('RENDER_CRASHED');
      expect(err.message).toMatch(/SIGKILL/);
      const rendered = await Promise.all(others);
      expect(rendered.map((p) => p.text)).toEqual(['page 1', 'page 2', 'page 3']);
      expect(pool.stats()).toMatchObject({ crashed: 1, rendered: 3 });
    } finally {
      await pool.close();
    }
  });

  it('kills a renderer above maxRssMb (RENDER_CRASHED, out of memory) and recovers', async () => {
    // pdf.js: the image limit is lifted so the 400 MB bomb is decoded. PDFium scales images as
    // it decodes them (it draws the bomb in ~170 MB), so it gets the slow 5000 px page instead.
    // Either way the RSS watch must stop it.
    const heavy: RenderRequest =
      renderer === 'pdfjs' ? { path: tmp.write('huge.pdf', hugeImagePdf(20_000)), blobId: 'huge', page: 1, format: 'png' } : slowFor.pdfium;
    const pool = new RenderPool({ size: 1, maxImagePixels: 1_000_000_000, maxRssMb: renderer === 'pdfjs' ? 700 : 250, renderer, fallback: false });
    try {
      const err = await failure(pool.render(heavy));
      expect(err.code).toBe('RENDER_CRASHED');
      expect(err.message).toMatch(/out of memory/);
      expect((await pool.render(small(4))).text).toBe('page 4');
      expect(pool.stats()).toMatchObject({ crashed: 1, rendered: 1 });
    } finally {
      await pool.close();
    }
  });

  it('keeps all renderers together under maxTotalRssMb: idle ones go first, then the largest busy one', async () => {
    // Two idle renderers hold ~120 MB each; a 5000 px page of the slow page needs 280-430 MB.
    const pool = new RenderPool({ size: 2, maxRssMb: 4000, maxTotalRssMb: 250, pageTimeoutMs: 60_000, renderer, fallback: false });
    try {
      await pool.warm();
      expect(pool.stats().renderers).toBe(2);
      const err = await failure(pool.render({ ...slowFor.pdfium, blobId: `slower-${renderer}` }));
      expect(err.code).toBe('RENDER_CRASHED');
      expect(err.message).toMatch(/together.*above maxTotalRssMb 250/);
      expect(pool.stats().recycled).toBeGreaterThanOrEqual(1); // the idle renderer went first
      expect((await pool.render(small(3))).text).toBe('page 3');
    } finally {
      await pool.close();
    }
  });

  it('stops a form-XObject bomb by its wall clock or its memory cap, never hangs', async () => {
    const pool = new RenderPool({ size: 1, pageTimeoutMs: 3000, maxRssMb: 1000, renderer, fallback: false });
    try {
      const bomb = { path: tmp.write('bomb.pdf', formBombPdf(9, 10)), blobId: 'bomb', page: 1, format: 'png' as const };
      const err = await failure(pool.render(bomb));
      expect(['RENDER_TIMEOUT', 'RENDER_CRASHED']).toContain(err.code);
      expect((await pool.render(small(5))).text).toBe('page 5');
    } finally {
      await pool.close();
    }
  });
});

describe('recycling', () => {
  it('replaces a renderer after maxPagesPerRenderer pages', async () => {
    const pool = new RenderPool({ size: 1, maxPagesPerRenderer: 3, fallback: false });
    try {
      const seen = new Set<number>();
      for (let p = 1; p <= 7; p++) {
        await pool.render(small(p));
        for (const pid of childPids('render')) seen.add(pid);
      }
      expect(pool.stats()).toMatchObject({ rendered: 7, recycled: 2, crashed: 0 });
      expect(seen.size).toBeGreaterThanOrEqual(3);
    } finally {
      await pool.close();
    }
  });
});

describe('abort', () => {
  it('removes a queued page at once, and kills the renderer of a page in progress', async () => {
    const pool = new RenderPool({ size: 1, pageTimeoutMs: 60_000 });
    try {
      await pool.warm();
      const running = new AbortController();
      const queued = new AbortController();
      const slowPage = pool.render(slow, running.signal);
      const waiting = pool.render(small(1), queued.signal);
      await waitFor(() => pool.stats().busy === 1);
      queued.abort(new Error('job cancelled'));
      const queuedErr = await failure(waiting);
      expect(queuedErr.code).toBe('ABORTED');
      expect(queuedErr.message).toMatch(/job cancelled/);
      expect(pool.stats().busy).toBe(1);

      const started = performance.now();
      running.abort(new Error('lock lost'));
      expect((await failure(slowPage)).code).toBe('ABORTED');
      expect(performance.now() - started).toBeLessThan(5000);
      expect((await pool.render(small(2))).text).toBe('page 2');
      expect(pool.stats()).toMatchObject({ crashed: 0, timedOut: 0 });
    } finally {
      await pool.close();
    }
  });

  it('rejects at once when the signal is already aborted', async () => {
    const pool = new RenderPool({ size: 1 });
    try {
      const err = await failure(pool.render(small(1), AbortSignal.abort(new Error('too late'))));
      expect(err.code).toBe('ABORTED');
      expect(pool.stats().renderers).toBe(0);
    } finally {
      await pool.close();
    }
  });
});

describe('close', () => {
  it('fails running and queued pages with ABORTED, leaves no child and no timer, and is idempotent', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const timersBefore = timers();
    const pool = new RenderPool({ size: 2 });
    await pool.warm();
    expect(childPids('render')).toHaveLength(2);
    const pending = [pool.render(slow), pool.render(slow), pool.render(small(1)), pool.render(small(2))];
    const settled = Promise.allSettled(pending);
    await waitFor(() => pool.stats().busy === 2);
    const first = pool.close();
    expect(pool.close()).toBe(first);
    await first;
    const outcomes = await settled;
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toMatchObject({ code: 'ABORTED' });
    }
    expect(childPids('render')).toEqual([]);
    expect(timers()).toBeLessThanOrEqual(timersBefore);
    expect(pool.stats()).toMatchObject({ renderers: 0, busy: 0, queued: 0 });
    expect((await failure(pool.render(small(1)))).code).toBe('ABORTED');
  });
});

describe('options', () => {
  it('rejects a bad option with a TypeError naming it', () => {
    expect(() => new RenderPool({ size: 0 })).toThrow(/size/);
    expect(() => new RenderPool({ pageTimeoutMs: 1.5 })).toThrow(/pageTimeoutMs/);
    expect(() => new RenderPool({ fontRendering: 'magic' as 'native' })).toThrow(/fontRendering/);
    expect(() => new RenderPool({ renderer: 'mupdf' as 'pdfium' })).toThrow(/renderer must be 'pdfium' or 'pdfjs'/);
    expect(() => new RenderPool({ fallback: 'yes' as unknown as boolean })).toThrow(/fallback/);
    expect(() => new RenderPool({ maxTotalRssMb: -1 })).toThrow(/maxTotalRssMb/);
  });

  it('draws the same page whichever font rendering pdf.js is given', async () => {
    const native = new RenderPool({ size: 1, renderer: 'pdfjs', fallback: false, fontRendering: 'native' });
    const paths = new RenderPool({ size: 1, renderer: 'pdfjs', fallback: false, fontRendering: 'paths' });
    try {
      const request = (page: number) => ({ path: corpusFile('tracemonkey.pdf'), blobId: 'tm', page, format: 'png' as const });
      const [a, b, other] = await Promise.all([native.render(request(1)), paths.render(request(1)), paths.render(request(2))]);
      expect([a.renderer, b.renderer]).toEqual(['pdfjs', 'pdfjs']);
      expect([a.width, a.height]).toEqual([b.width, b.height]);
      expect(a.text).toBe(b.text);
      // Glyph edges differ (Skia's text gamma draws slightly lighter strokes); the layout of
      // the ink does not. Compared on thumbnails, where edges average out.
      const thumb = (image: Buffer) => sharp(image).greyscale().resize(124).raw().toBuffer();
      const [ta, tb, tother] = await Promise.all([thumb(a.image), thumb(b.image), thumb(other.image)]);
      expect(correlation(ta, tb)).toBeGreaterThan(0.95);
      expect(correlation(ta, tother)).toBeLessThan(0.6);
    } finally {
      await Promise.all([native.close(), paths.close()]);
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
