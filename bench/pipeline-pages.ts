/**
 * End-to-end pages per second with an instant engine, against pdftoppm (poppler) and mutool draw
 * (MuPDF) rendering the same pages at the same size (longest side 1288 px, PNG) on all cores.
 *
 *   node_modules/.bin/node bench/pipeline-pages.ts [--copies 2] [--corpus ../shared/corpus] [--rounds 2]
 *
 * docbatch runs as a user runs it: `docbatch engine` (the emulator, sped up 1000x with 1-2 token
 * replies, so the engine costs ~nothing), `docbatch worker` and `docbatch writer` as separate
 * processes on a real Redis (REDIS_URL, throwaway prefix), and the clock covers
 * `docbatch enqueue --wait`: validation, blob store, queue, render, request, result, Markdown.
 * The documents are whole corpus files; each is enqueued `--copies` times (a byte appended after
 * %%EOF makes a distinct document). The tools render exactly those pages. Target (issue: inputs
 * at real-world scale): docbatch at least 2x pdftoppm, as close to MuPDF as it gets.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { purgePrefix } from '../src/store/admin.ts';
import { available, runTool, TOOLS, type PageRef } from './lib/render-tools.ts';

const { values } = parseArgs({
  options: {
    copies: { type: 'string', default: '2' },
    corpus: { type: 'string', default: resolve(import.meta.dirname, '../../shared/corpus') },
    rounds: { type: 'string', default: '2' },
  },
});
const DOCS: Array<[string, number]> = [
  ['tracemonkey.pdf', 14],
  ['TAMReview.pdf', 23],
  ['sizes.pdf', 3],
  ['rotation.pdf', 2],
  ['issue5481.pdf', 3],
  ['cmykjpeg.pdf', 1],
  ['alphatrans.pdf', 1],
  ['ThuluthFeatures.pdf', 1],
];
const BIN = join(import.meta.dirname, '..', 'bin', 'docbatch');
const cores = availableParallelism();
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

function start(args: string[], env: Record<string, string>): { child: ChildProcess; url: Promise<string> } {
  const child = spawn(BIN, args, { env: { ...process.env, LOG_FORMAT: 'json', LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = new Promise<string>((resolveUrl) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      const m = /http:\/\/[\d.:]+/.exec(out);
      if (m) resolveUrl(m[0]);
    });
  });
  return { child, url };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

async function docbatchRound(files: string[], dir: string, round: number): Promise<number> {
  const prefix = `bench-pages-${process.pid}-${round}`;
  const env = { REDIS_URL: redisUrl, DOCBATCH_PREFIX: prefix, BLOB_DIR: join(dir, `blobs${round}`), OUT_DIR: join(dir, `out${round}`) };
  const engine = start(['engine', '--port', '0', '--speed', '1000', '--output-tokens-min', '1', '--output-tokens-max', '2'], {});
  const engineUrl = await engine.url;
  const worker = start(['worker'], { ...env, ENGINE_URL: engineUrl, RENDERERS: String(cores) });
  const writer = start(['writer'], env);
  try {
    await new Promise((r) => setTimeout(r, 1500)); // renderers warm, as in a running worker
    const t0 = performance.now();
    const run = spawnSync(BIN, ['enqueue', '--wait', '--json', ...files], { env: { ...process.env, ...env, LOG_FORMAT: 'json' }, encoding: 'utf8' });
    const seconds = (performance.now() - t0) / 1000;
    if (run.status !== 0) throw new Error(`enqueue --wait exited ${run.status}: ${run.stderr.slice(-1500)}`);
    return seconds;
  } finally {
    await Promise.all([stop(worker.child), stop(writer.child), stop(engine.child)]);
    const redis = new Redis(redisUrl);
    await purgePrefix(redis, prefix);
    redis.disconnect();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'docbatch-bench-pages-'));
try {
  const files: string[] = [];
  const pages: PageRef[] = [];
  for (let copy = 0; copy < Number(values.copies); copy++) {
    for (const [name, count] of DOCS) {
      const file = join(dir, `${basename(name, '.pdf')}-${copy}.pdf`);
      copyFileSync(join(values.corpus, 'pdf', name), file);
      appendFileSync(file, `\n% copy ${copy}\n`);
      files.push(file);
      for (let p = 1; p <= count; p++) pages.push({ file, page: p });
    }
  }
  const rounds = Number(values.rounds);
  const results: Array<{ name: string; seconds: number }> = [];
  let best = Infinity;
  for (let round = 0; round < rounds; round++) best = Math.min(best, await docbatchRound(files, dir, round));
  results.push({ name: 'docbatch end to end (instant engine)', seconds: best });
  for (const tool of TOOLS) {
    if (!available(tool.name)) {
      console.log(`${tool.name}: not installed (apt-get install -y poppler-utils mupdf-tools); skipped`);
      continue;
    }
    let t = Infinity;
    for (let round = 0; round < rounds; round++) {
      const out = join(dir, `${tool.name}-${round}`);
      mkdirSync(out);
      t = Math.min(t, await runTool(tool, pages, cores, out, 1288));
    }
    results.push({ name: tool.name, seconds: t });
  }
  const pdftoppm = results.find((r) => r.name.startsWith('pdftoppm'));
  const mutool = results.find((r) => r.name.startsWith('mutool'));
  console.log(`${pages.length} pages (${files.length} documents), longest side 1288 px, PNG, ${cores} cores, best of ${rounds}`);
  console.log('| renderer | pages/s | x pdftoppm | x mutool |');
  console.log('|---|---:|---:|---:|');
  for (const r of results) {
    const rate = pages.length / r.seconds;
    const vs = (o?: { seconds: number }) => (o ? (o.seconds / r.seconds).toFixed(2) : '-');
    console.log(`| ${r.name} | ${rate.toFixed(1)} | ${vs(pdftoppm)} | ${vs(mutool)} |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
