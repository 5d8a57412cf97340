/**
 * PDFium's text layer keeps the characters inside the box it draws, and only those. A page whose
 * /MediaBox or /CropBox has no area ([0 0 0 0], as some generators write) is drawn by both
 * engines on PDFium's and pdf.js's default (US Letter, or the media box); its text was dropped
 * by PDFium whole (every character "outside" the empty box) with no error, so no fallback:
 * the engine got the image without its text. pdftotext reads these pages' text too.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { RENDERER_NAMES } from '../../src/render/image.ts';
import { RenderPool } from '../../src/render/pool.ts';
import { buildPdf, stream, tempDir } from './fixtures.ts';

const tmp = tempDir('text-box');
const pools = new Map(RENDERER_NAMES.map((r) => [r, new RenderPool({ size: 1, renderer: r, fallback: false })]));
afterAll(async () => {
  await Promise.all([...pools.values()].map((p) => p.close()));
  tmp.cleanup();
});

/** One page with the given box entries and two lines: one inside 0..300 × 0..200, one at x = 2000 (a slug). */
function boxPdf(boxes: string): Buffer {
  return buildPdf([
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    `<< /Type /Page /Parent 2 0 R ${boxes} /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>`,
    stream('', 'BT /F1 20 Tf 20 100 Td (Inside the page) Tj ET BT /F1 20 Tf 2000 100 Td (Far outside) Tj ET'),
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ]);
}

const cases = [
  { name: 'a media box with no area', boxes: '/MediaBox [0 0 0 0]', widthPt: 612, heightPt: 792 },
  { name: 'a crop box with no area', boxes: '/MediaBox [0 0 300 200] /CropBox [0 0 0 0]', widthPt: 300, heightPt: 200 },
  { name: 'a crop box reaching past the media box', boxes: '/MediaBox [0 0 300 200] /CropBox [0 0 3000 200]', widthPt: 300, heightPt: 200 },
  { name: 'a normal media box', boxes: '/MediaBox [0 0 300 200]', widthPt: 300, heightPt: 200 },
];

describe.each(RENDERER_NAMES)('%s: the text of the page drawn', (renderer) => {
  it.each(cases)('$name: the text on the page is read', async ({ name, boxes, widthPt, heightPt }) => {
    const path = tmp.write(`${renderer}-${name.replaceAll(' ', '-')}.pdf`, boxPdf(boxes));
    const page = await pools.get(renderer)!.render({ path, blobId: path, page: 1, format: 'png', text: true });
    expect(page.renderer).toBe(renderer);
    expect({ widthPt: page.widthPt, heightPt: page.heightPt }).toEqual({ widthPt, heightPt });
    expect(page.text).toContain('Inside the page');
    // PDFium leaves out what lies beyond the box it draws (pdf.js reports every character).
    if (renderer === 'pdfium') expect(page.text).not.toContain('Far outside');
  });
});
