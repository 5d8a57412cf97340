/**
 * Every page of a multi-page TIFF rendered as the worker renders image pages (renderImagePage,
 * sharp), in page order: from the file (libvips reads every directory of it for each page) and
 * with the worker's TiffPages (each page handed over as a TIFF of its own, the directory chain
 * walked once). Prints wall time, ms a page and the read system calls made (/proc/self/io); and
 * first the enqueue-side walk of every page's size (tiffPageSizes).
 *
 *   node_modules/.bin/node bench/tiff-pages.ts [--pages 2000] [--every 1] [--size 64]
 *
 * `--every K` renders pages 1, 1+K, 1+2K, ... only (the file way of 2,000 pages takes minutes).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { tiffPageSizes } from '../src/ingest/tiff-pages.ts';
import { renderImagePage } from '../src/render/image-file.ts';
import { TiffPages } from '../src/render/tiff-page.ts';
import { generateTiff } from './lib/tiff-gen.ts';

const { values } = parseArgs({ options: { pages: { type: 'string', default: '2000' }, every: { type: 'string', default: '1' }, size: { type: 'string', default: '64' } } });
const pages = Number(values.pages);
const every = Number(values.every);
const side = Number(values.size);
const syscr = (): number => Number(/syscr: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? NaN);

const dir = mkdtempSync(join(tmpdir(), 'docbatch-bench-tiff-'));
try {
  const path = join(dir, 'fax.tiff');
  const { bytes } = generateTiff({ pages, width: side, height: side });
  writeFileSync(path, bytes);
  const wanted = Array.from({ length: Math.ceil(pages / every) }, (_, i) => 1 + i * every);
  console.log(`TIFF             ${pages} pages of ${side} x ${side}, ${(bytes.length / 1024 / 1024).toFixed(1)} MB; rendering ${wanted.length} pages`);
  {
    // What enqueue does once: every page's size from the directory chain (prepare.ts checkFrames).
    const reads = syscr();
    const started = performance.now();
    const sizes = await tiffPageSizes(path);
    console.log(`${'enqueue check'.padEnd(16)} ${((performance.now() - started) / 1000).toFixed(2)} s   ${sizes.length} page sizes   ${syscr() - reads} read calls`);
  }
  for (const [name, tiffPages] of [['from the file', undefined], ['TiffPages', new TiffPages()]] as const) {
    const reads = syscr();
    const started = performance.now();
    for (const page of wanted) await renderImagePage({ path, page, longestSide: side, format: 'png' }, tiffPages);
    const ms = performance.now() - started;
    console.log(`${name.padEnd(16)} ${(ms / 1000).toFixed(2)} s   ${(ms / wanted.length).toFixed(1)} ms a page   ${syscr() - reads} read calls`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
