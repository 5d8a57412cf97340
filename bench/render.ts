/**
 * Pages per second of RenderPool (each engine: PDFium, pdf.js) against pdftoppm (poppler) and
 * mutool draw (MuPDF) on all cores, same pages, same size (longest side 1288 px, PNG).
 * docs/rendering.md quotes it.
 *
 *   node_modules/.bin/node bench/render.ts [--pages 100] [--side 1288] [--cores N] [--rounds 3]
 *                                          [--renderer pdfium,pdfjs] [--format png|jpeg]
 *                                          [--fonts native|paths] [--corpus ../shared/corpus]
 *
 * The reference tools come from scripts/ensure-render-tools.sh (apt-get); when they cannot be
 * installed they are skipped. RenderPool runs twice per engine: with the text layer (what the
 * worker does) and without (what the tools do); the fallback is off, so each engine is
 * measured alone.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { RendererName } from '../src/render/image.ts';
import { RenderPool } from '../src/render/pool.ts';
import { available, pageList, runTool, TOOLS, type PageRef } from './lib/render-tools.ts';

const { values } = parseArgs({
  options: {
    pages: { type: 'string', default: '100' },
    side: { type: 'string', default: '1288' },
    cores: { type: 'string', default: String(availableParallelism()) },
    format: { type: 'string', default: 'png' },
    corpus: { type: 'string', default: resolve(import.meta.dirname, '../../shared/corpus') },
    rounds: { type: 'string', default: '3' },
    fonts: { type: 'string', default: 'native' },
    renderer: { type: 'string', default: 'pdfium,pdfjs' },
  },
});
const renderers = values.renderer.split(',').map((r) => (r === 'pdfjs' ? 'pdfjs' : 'pdfium') as RendererName);
const rounds = Number(values.rounds);
const fontRendering = values.fonts === 'paths' ? 'paths' : 'native';
const cores = Number(values.cores);
const side = Number(values.side);
const format = values.format === 'jpeg' ? 'jpeg' : 'png';
const pages = pageList(join(values.corpus, 'pdf'), Number(values.pages));

/** Renderers are started first (a worker starts its pool once); the clock runs from the first page. */
async function runPool(list: PageRef[], text: boolean, renderer: RendererName): Promise<{ seconds: number; bytes: number }> {
  const pool = new RenderPool({ size: cores, fontRendering, renderer, fallback: false });
  try {
    await pool.warm();
    const started = performance.now();
    // Everything queued at once, as a worker preparing a deep window would: the pool decides
    // the order (affinity) and keeps every renderer busy.
    const results = await Promise.all(
      list.map((ref) => pool.render({ path: ref.file, blobId: ref.file, page: ref.page, longestSide: side, format, text })),
    );
    const seconds = (performance.now() - started) / 1000;
    return { seconds, bytes: results.reduce((n, r) => n + r.image.length, 0) };
  } finally {
    await pool.close();
  }
}

interface Contender {
  name: string;
  /** Wall seconds for the whole page list. */
  run: () => Promise<number>;
}

const contenders: Contender[] = [];
for (const renderer of renderers) {
  for (const text of [true, false]) {
    contenders.push({
      name: `RenderPool ${renderer}${text ? ' + text' : ''}`,
      run: async () => {
        const r = await runPool(pages, text, renderer);
        bytesPerPage.set(renderer, r.bytes / pages.length);
        return r.seconds;
      },
    });
  }
}
spawnSync('bash', [join(import.meta.dirname, '..', 'scripts', 'ensure-render-tools.sh')], { stdio: 'inherit' });
for (const tool of TOOLS) {
  if (format !== 'png') break;
  if (!available(tool.name)) {
    console.log(`${tool.name}: not installed (scripts/ensure-render-tools.sh failed), skipped`);
    continue;
  }
  contenders.push({
    name: tool.name,
    run: async () => {
      const out = mkdtempSync(join(tmpdir(), `docbatch-bench-${tool.name}-`));
      try {
        return await runTool(tool, pages, cores, out, side);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
  });
}

const bytesPerPage = new Map<RendererName, number>();
console.log(`${pages.length} pages, longest side ${side} px, ${format}, fonts ${fontRendering}, ${cores} processes (cores: ${availableParallelism()}), best of ${rounds} rounds`);
// Rounds interleave the contenders, so a burst of load from elsewhere on the machine does not
// land on one of them only; each keeps its best round.
const best = new Map<string, number>();
for (let round = 1; round <= rounds; round++) {
  for (const c of contenders) {
    const seconds = await c.run();
    best.set(c.name, Math.min(best.get(c.name) ?? Infinity, seconds));
    console.log(`round ${round}: ${c.name}: ${seconds.toFixed(2)} s, ${(pages.length / seconds).toFixed(2)} pages/s (load ${loadavg()[0]!.toFixed(1)})`);
  }
}
for (const [renderer, bytes] of bytesPerPage) console.log(`${renderer} ${format} size: ${Math.round(bytes / 1024)} KiB/page`);

const rate = (name: string) => (best.has(name) ? pages.length / best.get(name)! : undefined);
const poppler = rate('pdftoppm');
const mupdf = rate('mutool');
console.log(`\nrenderer (load ${loadavg().map((l) => l.toFixed(1)).join(' ')})   pages/s   ×pdftoppm   ×mutool`);
for (const c of contenders) {
  const pps = rate(c.name)!;
  const vsPoppler = poppler ? (pps / poppler).toFixed(2) : '-';
  const vsMupdf = mupdf ? (pps / mupdf).toFixed(2) : '-';
  console.log(`${c.name.padEnd(32)} ${pps.toFixed(2).padStart(8)} ${vsPoppler.padStart(11)} ${vsMupdf.padStart(9)}`);
}
