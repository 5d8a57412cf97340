/**
 * The text layer two ways, on the same pages: pdf.js (getTextContent + text.ts's line joining,
 * what the pdf.js renderer does) and PDFium (its character API + the same line joining, what
 * the PDFium renderer does). Prints, per page, how many of pdf.js's lines PDFium gives
 * identically (whitespace aside) and the time each takes as its renderer pays it (best of
 * rounds, documents open): pdf.js getPage + getTextContent (which parses the content stream
 * again for text), PDFium's text page from the page already loaded for drawing. One core.
 *
 *   node_modules/.bin/node bench/text-layer.ts [--rounds 3] [--corpus ../shared/corpus]
 *
 * The lines that differ are on pages whose fonts have no usable Unicode mapping (TAMReview
 * pp. 2-23, ThuluthFeatures): both engines read glyph garbage there, different garbage.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { PDFDocumentProxy } from 'pdfjs-dist';
import { loadPdfium, PdfiumDocument } from '../src/render/pdfium.ts';
import { readText } from '../src/render/pdfium-page.ts';
import { loadPdfJs, openDocument } from '../src/render/pdfjs.ts';
import { joinTextRuns } from '../src/render/text.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    corpus: { type: 'string', default: resolve(import.meta.dirname, '../../shared/corpus') },
  },
});
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const SET: Array<[string, number[]]> = [
  ['tracemonkey.pdf', range(1, 14)],
  ['TAMReview.pdf', [1, 2, 5, 9]],
  ['freeculture.pdf', [30, 31, 32, 50, 117, 200, 351]],
  ['ThuluthFeatures.pdf', [1]],
  ['rotation.pdf', [1, 2]],
  ['xfa_filled_imm1344e.pdf', [1]],
  ['alphatrans.pdf', [1]],
  ['sizes.pdf', [1, 2, 3]],
];

const api = await loadPdfium();
await loadPdfJs();
const lines = (text: string) => text.split('\n').map((l) => l.replace(/\s+/g, '')).filter((l) => l !== '');

async function pdfjsText(doc: PDFDocumentProxy, page: number): Promise<string> {
  const p = await doc.getPage(page);
  try {
    return joinTextRuns((await p.getTextContent()).items);
  } finally {
    p.cleanup();
  }
}

/** The page is loaded (for drawing) before the clock: the text layer reuses it. */
function pdfiumText(doc: PdfiumDocument, pageNumber: number): { text: string; ms: number } {
  let best = Infinity;
  let text = '';
  for (let r = 0; r < Number(values.rounds); r++) {
    const page = api._FPDF_LoadPage(doc.handle, pageNumber - 1);
    const t = performance.now();
    text = readText(api, page);
    best = Math.min(best, performance.now() - t);
    api._FPDF_ClosePage(page);
  }
  return { text, ms: best };
}

let totalLines = 0;
let sameLines = 0;
let pdfjsMs = 0;
let pdfiumMs = 0;
console.log(`load ${loadavg()[0]!.toFixed(1)}`);
console.log('| page | pdf.js lines | PDFium lines | identical | pdf.js ms | PDFium ms |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const [name, pages] of SET) {
  const bytes = readFileSync(join(values.corpus, 'pdf', name));
  const pdfium = PdfiumDocument.open(api, new Uint8Array(bytes), undefined);
  const { doc, task } = await openDocument(new Uint8Array(bytes), { fonts: 'paths' });
  try {
    for (const page of pages) {
      let best = Infinity;
      let a = '';
      for (let r = 0; r < Number(values.rounds); r++) {
        const t = performance.now();
        a = await pdfjsText(doc, page);
        best = Math.min(best, performance.now() - t);
      }
      const b = pdfiumText(pdfium, page);
      const [la, lb] = [lines(a), new Set(lines(b.text))];
      const same = la.filter((l) => lb.has(l)).length;
      totalLines += la.length;
      sameLines += same;
      pdfjsMs += best;
      pdfiumMs += b.ms;
      console.log(`| ${name} p. ${page} | ${la.length} | ${lb.size} | ${same} | ${best.toFixed(1)} | ${b.ms.toFixed(1)} |`);
    }
  } finally {
    pdfium.close();
    await task.destroy();
  }
}
console.log(`\nlines of pdf.js that PDFium gives identically: ${sameLines}/${totalLines}; text layer time, all pages: pdf.js ${pdfjsMs.toFixed(0)} ms, PDFium ${pdfiumMs.toFixed(0)} ms (load ${loadavg()[0]!.toFixed(1)})`);
