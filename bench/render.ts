/**
 * Pages per second of RenderPool against pdftoppm (poppler) and mutool draw (MuPDF) on all
 * cores, same pages, same size (longest side 1288 px, PNG). docs/rendering.md quotes it.
 *
 *   node_modules/.bin/node bench/render.ts [--pages 100] [--side 1288] [--cores N]
 *                                          [--format png|jpeg] [--corpus ../shared/corpus]
 *
 * The reference tools come from `apt-get install -y poppler-utils mupdf-tools`; when absent
 * they are skipped. RenderPool runs twice: with the text layer (what the worker does) and
 * without (what the tools do).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { RenderPool } from '../src/render/pool.ts';
import { available, pageList, runTool, TOOLS, type PageRef } from './lib/render-tools.ts';

const { values } = parseArgs({
  options: {
    pages: { type: 'string', default: '100' },
    side: { type: 'string', default: '1288' },
    cores: { type: 'string', default: String(availableParallelism()) },
    format: { type: 'string', default: 'png' },
    corpus: { type: 'string', default: resolve(import.meta.dirname, '../../shared/corpus') },
  },
});
const cores = Number(values.cores);
const side = Number(values.side);
const format = values.format === 'jpeg' ? 'jpeg' : 'png';
const pages = pageList(join(values.corpus, 'pdf'), Number(values.pages));

async function runPool(list: PageRef[], text: boolean): Promise<{ seconds: number; warmSeconds: number; bytes: number; stats: unknown }> {
  const pool = new RenderPool({ size: cores });
  try {
    const warmStart = performance.now();
    await pool.warm();
    const warmSeconds = (performance.now() - warmStart) / 1000;
    const started = performance.now();
    // Everything queued at once, as a worker preparing a deep window would: the pool decides
    // the order (affinity) and keeps every renderer busy.
    const results = await Promise.all(
      list.map((ref) => pool.render({ path: ref.file, blobId: ref.file, page: ref.page, longestSide: side, format, text })),
    );
    const seconds = (performance.now() - started) / 1000;
    return { seconds, warmSeconds, bytes: results.reduce((n, r) => n + r.image.length, 0), stats: pool.stats() };
  } finally {
    await pool.close();
  }
}

console.log(`${pages.length} pages, longest side ${side} px, ${format}, ${cores} processes (cores: ${availableParallelism()})`);
const rows: Array<{ name: string; pagesPerSecond: number }> = [];

for (const text of [true, false]) {
  const r = await runPool(pages, text);
  const pps = pages.length / r.seconds;
  rows.push({ name: `docbatch RenderPool${text ? ' + text' : ''}`, pagesPerSecond: pps });
  console.log(
    `docbatch RenderPool (text ${text ? 'on' : 'off'}): ${r.seconds.toFixed(2)} s, ${pps.toFixed(2)} pages/s, ` +
      `${Math.round(r.bytes / pages.length / 1024)} KiB/page, warm-up ${r.warmSeconds.toFixed(2)} s`,
  );
}

for (const tool of TOOLS) {
  if (format !== 'png') break;
  if (!available(tool.name)) {
    console.log(`${tool.name}: not installed, skipped (apt-get install -y poppler-utils mupdf-tools)`);
    continue;
  }
  const out = mkdtempSync(join(tmpdir(), `docbatch-bench-${tool.name}-`));
  try {
    const seconds = await runTool(tool, pages, cores, out, side);
    const pps = pages.length / seconds;
    rows.push({ name: tool.name, pagesPerSecond: pps });
    console.log(`${tool.name}: ${seconds.toFixed(2)} s, ${pps.toFixed(2)} pages/s`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const poppler = rows.find((r) => r.name === 'pdftoppm');
const mupdf = rows.find((r) => r.name === 'mutool');
console.log('\nrenderer                          pages/s   ×pdftoppm   ×mutool');
for (const row of rows) {
  const vsPoppler = poppler ? (row.pagesPerSecond / poppler.pagesPerSecond).toFixed(2) : '-';
  const vsMupdf = mupdf ? (row.pagesPerSecond / mupdf.pagesPerSecond).toFixed(2) : '-';
  console.log(`${row.name.padEnd(32)} ${row.pagesPerSecond.toFixed(2).padStart(8)} ${vsPoppler.padStart(11)} ${vsMupdf.padStart(9)}`);
}
