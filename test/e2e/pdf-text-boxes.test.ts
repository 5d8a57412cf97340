/**
 * End to end (enqueue, worker with PDFium, emulator, writer): a PDF whose pages have a media or
 * crop box with no area. Both engines draw them (PDFium on US Letter or the media box); PDFium's
 * text layer dropped every character as "outside the box", with no error and so no fallback, and
 * the engine was sent the image without the page's text. The emulator echoes the text it got.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptedIds, parseEcho, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { buildPdf, stream } from '../render/fixtures.ts';

describe('pages whose box has no area', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await startPipeline({ file: import.meta.filename, config: { renderer: 'pdfium', renderers: 1 } });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('their text reaches the engine, drawn by PDFium', async () => {
    const page = (id: number, boxes: string, content: number) => `<< /Type /Page /Parent 2 0 R ${boxes} /Resources << /Font << /F1 3 0 R >> >> /Contents ${content} 0 R >>`;
    const pdf = buildPdf([
      '<< /Type /Catalog /Pages 2 0 R >>',
      '<< /Type /Pages /Kids [4 0 R 5 0 R] /Count 2 >>',
      '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
      page(4, '/MediaBox [0 0 0 0]', 6),
      page(5, '/MediaBox [0 0 300 200] /CropBox [0 0 0 0]', 7),
      stream('', 'BT /F1 20 Tf 20 100 Td (Quarterly figures on page one) Tj ET'),
      stream('', 'BT /F1 20 Tf 20 100 Td (Closing remarks on page two) Tj ET'),
    ]);
    const file = join(p.dir, 'boxes.pdf');
    writeFileSync(file, pdf);
    const ids = acceptedIds(await p.enqueue([file]));
    await p.wait(ids);
    const pages = parsePages(readFileSync(join(p.config.outDir, 'boxes.md'), 'utf8'));
    expect([...pages.keys()]).toEqual([1, 2]);
    const echoes = [...pages.values()].map((pg) => {
      expect(pg.failed).toBeNull();
      return parseEcho(pg.body);
    });
    expect(echoes.map((e) => e.text && { words: e.text.words, first: e.text.first })).toEqual([
      { words: 5, first: 'Quarterly figures on page one' },
      { words: 5, first: 'Closing remarks on page two' },
    ]);
    const report = JSON.parse(readFileSync(join(p.config.outDir, 'boxes.report.json'), 'utf8'));
    expect(report.renderers).toEqual({ pdfium: 2 });
  });
});
