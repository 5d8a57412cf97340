/**
 * A renderer's start is not held to the page limit: importing its engine takes ~0.8 s on a busy
 * 2-core machine, so with RENDER_TIMEOUT_MS under that every renderer was killed before it was
 * ready and every page failed RENDER_CRASHED ("renderers fail to start"). A page limit of 500 ms
 * still bounds the pages themselves. Real renderer children.
 */
import { afterAll, expect, it } from 'vitest';
import { RENDERER_NAMES } from '../../src/render/image.ts';
import { RenderPool } from '../../src/render/pool.ts';
import { pagesPdf, tempDir, textPage } from './fixtures.ts';

const tmp = tempDir('start-time');
afterAll(() => tmp.cleanup());

it.each(RENDERER_NAMES)('%s: a page limit shorter than a renderer takes to start still renders a small page', async (renderer) => {
  const path = tmp.write(`small-${renderer}.pdf`, pagesPdf([textPage(300, 400, ['page 1'])]));
  const pool = new RenderPool({ size: 1, pageTimeoutMs: 500, renderer, fallback: false });
  try {
    const page = await pool.render({ path, blobId: `small-${renderer}`, page: 1, format: 'png', longestSide: 128 });
    expect(page.text).toBe('page 1');
  } finally {
    await pool.close();
  }
}, 60_000);
