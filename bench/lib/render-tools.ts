/**
 * The page set of bench/render.ts and the reference renderers it is compared with (poppler's
 * pdftoppm, MuPDF's mutool draw), run one process per core over a split of the pages.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface PageRef {
  file: string;
  page: number;
}

/** Which pages of the shared corpus the benchmark renders, before repetition (50 pages). */
export const PAGE_SET: Array<{ name: string; pages: number[] }> = [
  { name: 'tracemonkey.pdf', pages: range(1, 14) },
  { name: 'TAMReview.pdf', pages: range(1, 10) },
  { name: 'freeculture.pdf', pages: range(30, 47) },
  { name: 'sizes.pdf', pages: [1, 2, 3] },
  { name: 'rotation.pdf', pages: [1, 2] },
  { name: 'cmykjpeg.pdf', pages: [1] },
  { name: 'alphatrans.pdf', pages: [1] },
  { name: 'ThuluthFeatures.pdf', pages: [1] },
];

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** The page set repeated until it has at least `target` pages. */
export function pageList(corpus: string, target: number): PageRef[] {
  const once = PAGE_SET.flatMap(({ name, pages }) => pages.map((page) => ({ file: join(corpus, name), page })));
  const out: PageRef[] = [];
  while (out.length < target) out.push(...once);
  return out;
}

/** `count` contiguous shares, so each process opens a file once per run of its pages. */
export function split<T>(items: T[], count: number): T[][] {
  const shares: T[][] = [];
  const size = Math.ceil(items.length / count);
  for (let i = 0; i < items.length; i += size) shares.push(items.slice(i, i + size));
  return shares;
}

/** Consecutive pages of one file become one page range (one process invocation). */
export function ranges(share: PageRef[]): Array<{ file: string; first: number; last: number }> {
  const out: Array<{ file: string; first: number; last: number }> = [];
  for (const ref of share) {
    const prev = out.at(-1);
    if (prev && prev.file === ref.file && prev.last + 1 === ref.page) prev.last = ref.page;
    else out.push({ file: ref.file, first: ref.page, last: ref.page });
  }
  return out;
}

export interface Tool {
  name: string;
  /** argv for one page range, output images under `outDir`. */
  args: (r: { file: string; first: number; last: number }, outDir: string, index: number, longestSide: number) => string[];
}

export const TOOLS: Tool[] = [
  {
    name: 'pdftoppm',
    // -scale-to: the longest side, as docbatch does.
    args: (r, out, i, side) => ['-png', '-scale-to', String(side), '-f', String(r.first), '-l', String(r.last), r.file, join(out, `p${i}`)],
  },
  {
    name: 'mutool',
    // -w/-h: fit inside a side x side box, i.e. the longest side is `side`.
    args: (r, out, i, side) => ['draw', '-q', '-w', String(side), '-h', String(side), '-o', join(out, `m${i}-%d.png`), r.file, `${r.first}-${r.last}`],
  },
];

export function available(command: string): boolean {
  const probe = spawnSync(command, ['-v'], { stdio: 'ignore' });
  return probe.error === undefined;
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 1 << 20 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')}: ${err.message} ${stderr}`));
      else resolve();
    });
  });
}

/** Runs `tool` over `pages` with one sequential worker per core; returns wall seconds. */
export async function runTool(tool: Tool, pages: PageRef[], cores: number, outDir: string, longestSide: number): Promise<number> {
  if (!existsSync(outDir)) throw new Error(`no output dir ${outDir}`);
  const started = performance.now();
  let invocation = 0;
  await Promise.all(
    split(pages, cores).map(async (share) => {
      for (const r of ranges(share)) await run(tool.name, tool.args(r, outDir, invocation++, longestSide));
    }),
  );
  return (performance.now() - started) / 1000;
}
