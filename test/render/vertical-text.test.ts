/**
 * Vertical writing (CJK with /Identity-V) in PDFium's text layer: the text matrix is that of
 * horizontal text while each character sits below the previous one, so every character of a
 * column became a line of its own ("中\n文\n字"); pdf.js and pdftotext give the column as one line.
 * (Which column comes first differs: PDFium puts the left one first, pdf.js keeps content order.)
 * The font is built here: pdf.js's own LiberationSans (node_modules) embedded as a CID font, its
 * glyphs mapped to CJK characters by a /ToUnicode CMap (what is drawn does not matter here).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RENDERER_NAMES } from '../../src/render/image.ts';
import { RenderPool } from '../../src/render/pool.ts';
import { buildPdf, stream, tempDir } from './fixtures.ts';

const tmp = tempDir('vertical-text');
const pools = new Map(RENDERER_NAMES.map((r) => [r, new RenderPool({ size: 1, renderer: r, fallback: false })]));
afterAll(async () => {
  await Promise.all([...pools.values()].map((p) => p.close()));
  tmp.cleanup();
});

const FONT = readFileSync(join(dirname(createRequire(import.meta.url).resolve('pdfjs-dist/package.json')), 'standard_fonts/LiberationSans-Regular.ttf'));
/** Glyph ids 0x24.. (A, B, C, ... in LiberationSans) read as these characters. */
const CHARS = ['中', '文', '字', '日', '本', '語'];

function cidPdf(writing: 'H' | 'V', content: string): Buffer {
  const map = CHARS.map((c, i) => `<${(0x24 + i).toString(16).padStart(4, '0')}> <${c.codePointAt(0)!.toString(16).padStart(4, '0')}>`).join(' ');
  return buildPdf([
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 300] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    stream('', content),
    `<< /Type /Font /Subtype /Type0 /BaseFont /LiberationSans /Encoding /Identity-${writing} /DescendantFonts [6 0 R] /ToUnicode 8 0 R >>`,
    '<< /Type /Font /Subtype /CIDFontType2 /BaseFont /LiberationSans /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor 7 0 R /DW 1000 /CIDToGIDMap /Identity >>',
    '<< /Type /FontDescriptor /FontName /LiberationSans /Flags 4 /FontBBox [-544 -303 1302 980] /ItalicAngle 0 /Ascent 905 /Descent -212 /CapHeight 729 /StemV 80 /FontFile2 9 0 R >>',
    stream('', `/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /Docbatch-UCS def 1 begincodespacerange <0000> <FFFF> endcodespacerange ${CHARS.length} beginbfchar ${map} endbfchar endcmap CMapName currentdict /CMap defineresource pop end end`),
    stream(`/Length1 ${FONT.length}`, FONT),
  ]);
}

const cases = [
  // Two columns, right to left, three characters each (one show operator a column).
  { name: 'two vertical columns', writing: 'V' as const, content: 'BT /F1 30 Tf 250 280 Td <002400250026> Tj ET BT /F1 30 Tf 200 280 Td <002700280029> Tj ET', text: '中文字\n日本語' },
  // A column shown one operator at a time, after the font was seen writing down.
  { name: 'a column shown character by character', writing: 'V' as const, content: 'BT /F1 30 Tf 250 280 Td <00240025> Tj ET BT /F1 30 Tf 250 220 Td <0026> Tj ET', text: '中文字' },
  // Horizontal writing with the same font: two lines stay two lines.
  { name: 'horizontal lines', writing: 'H' as const, content: 'BT /F1 30 Tf 20 200 Td <002400250026> Tj ET BT /F1 30 Tf 20 160 Td <002700280029> Tj ET', text: '中文字\n日本語' },
  // Single characters stacked as lines of horizontal text stay lines.
  { name: 'one character a line, horizontal', writing: 'H' as const, content: 'BT /F1 30 Tf 20 200 Td <0024> Tj ET BT /F1 30 Tf 20 170 Td <0025> Tj ET', text: '中\n文' },
];

describe.each(RENDERER_NAMES)('%s: vertical writing in the text layer', (renderer) => {
  it.each(cases)('$name', async ({ name, writing, content, text }) => {
    const path = tmp.write(`${renderer}-${name.replaceAll(' ', '-')}.pdf`, cidPdf(writing, content));
    const page = await pools.get(renderer)!.render({ path, blobId: path, page: 1, format: 'png', text: true });
    expect(page.renderer).toBe(renderer);
    // The lines as a set: PDFium orders the two columns left to right (its own reading order),
    // pdf.js in content order (right to left here); what this file holds is each column whole.
    expect(page.text.split('\n').sort(), JSON.stringify(page.text)).toEqual(text.split('\n').sort());
  });
});
