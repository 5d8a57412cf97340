/**
 * End-to-end pages per second with an instant engine, against MuPDF's `mutool draw` (and
 * poppler's pdftoppm with --tools all) rendering the same pages at the same size (longest side
 * 1288 px, PNG) on all cores, measured in the same run, rounds interleaved. Issue 12's target:
 * docbatch ≥ 1.0× mutool on the shared corpus and on a long manual.
 *
 *   node_modules/.bin/node bench/pipeline-pages.ts [--suites corpus,manual] [--copies 2] [--rounds 3]
 *       [--renderer pdfium|pdfjs] [--tools mutool|all] [--corpus ../shared/corpus]
 *
 * Suites: `corpus` is 48 pages of 8 corpus files (whole documents), each enqueued `--copies`
 * times (a byte appended after %%EOF makes a distinct document); `manual` is freeculture.pdf,
 * all 352 pages (the long-manual case; the 285-page gri manual of the issue is not available).
 *
 * docbatch runs as a user runs it: `docbatch engine` (the emulator, sped up 1000x with 1-2 token
 * replies, so the engine costs ~nothing), one `docbatch worker` (RENDERERS = cores) and
 * `docbatch writer` as separate processes on a real Redis (REDIS_URL, throwaway prefix), started
 * once per suite and kept running, as a deployment is; the clock covers `docbatch enqueue --wait`
 * of new documents each round: validation, blob store, queue, render, request, result,
 * Markdown. A first round warms the deployment (fresh renderers; V8 compiles PDFium's wasm
 * lazily) and is printed but not counted. Each round also prints when its first page settled and
 * the rate from there to the last (the round's fixed start apart), and the CPU seconds each part used
 * (worker with its renderers, engine, writer, enqueue with its inspector), which says where
 * the time goes on a shared machine, and the docbatch/mutool ratio of each round.
 *
 * The tools render exactly the same pages, one process per core over a contiguous split.
 * `mutool` and `pdftoppm` come from scripts/ensure-render-tools.sh (apt-get; run here first).
 * The machine's load average is printed beside every figure: on a shared machine the figures
 * move, the ratios (interleaved rounds, best of each) much less.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { purgePrefix } from '../src/store/admin.ts';
import { available, runTool, TOOLS, type PageRef } from './lib/render-tools.ts';
import { BIN, startDocbatch, stopChild } from './lib/cli.ts';

const { values } = parseArgs({
  options: {
    suites: { type: 'string', default: 'corpus,manual' },
    copies: { type: 'string', default: '2' },
    corpus: { type: 'string', default: resolve(import.meta.dirname, '../../shared/corpus') },
    rounds: { type: 'string', default: '3' },
    renderer: { type: 'string', default: 'pdfium' },
    tools: { type: 'string', default: 'mutool' },
    renderers: { type: 'string', default: String(availableParallelism()) },
  },
});
const SUITES: Record<string, { docs: Array<[string, number]>; copies: number }> = {
  corpus: {
    docs: [
      ['tracemonkey.pdf', 14],
      ['TAMReview.pdf', 23],
      ['sizes.pdf', 3],
      ['rotation.pdf', 2],
      ['issue5481.pdf', 3],
      ['cmykjpeg.pdf', 1],
      ['alphatrans.pdf', 1],
      ['ThuluthFeatures.pdf', 1],
    ],
    copies: Number(values.copies),
  },
  manual: { docs: [['freeculture.pdf', 352]], copies: 1 },
};
const cores = availableParallelism();
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const load = () => loadavg()[0]!.toFixed(1);

const start = startDocbatch;
const stop = stopChild;

interface Proc {
  pid: number;
  ppid: number;
  /** utime + stime + its reaped children's, in seconds. */
  cpu: number;
  /** utime + stime alone. */
  own: number;
  cmdline: string;
}

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime + stime (+ cutime + cstime: children already reaped), in clock ticks (100 Hz).
      const own = (Number(f[11]) + Number(f[12])) / 100;
      const cpu = own + (Number(f[13]) + Number(f[14])) / 100;
      out.push({ pid: Number(entry), ppid: Number(f[1]), cpu, own, cmdline: readFileSync(`/proc/${entry}/cmdline`, 'latin1') });
    } catch {
      // gone while we looked
    }
  }
  return out;
}

/** CPU seconds of a process and everything under it. */
function treeCpu(root: number, all = processes()): number {
  let total = 0;
  const walk = (pid: number) => {
    for (const p of all) {
      if (p.pid === pid) total += p.cpu;
      if (p.ppid === pid) walk(p.pid);
    }
  };
  walk(root);
  return total;
}

/** Waits until the worker has `cores` renderers and they sit idle (as in a running worker). */
async function renderersIdle(worker: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last = -1;
  while (Date.now() < deadline) {
    const all = processes();
    const renderers = all.filter((p) => p.ppid === worker && p.cmdline.includes('render/child.ts'));
    const cpu = treeCpu(worker, all);
    if (renderers.length >= cores && cpu === last) return;
    last = cpu;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error('the worker\'s renderers did not start within 30 s');
}

interface RoundResult {
  seconds: number;
  cpu: string;
  /** From the round's first unit settled to its last (the records' started_at, finished_at). */
  settling: { firstAfter: number; seconds: number } | null;
}

/** One engine, worker and writer for a whole suite: a running deployment, as a user has it. */
class Deployment {
  readonly prefix: string;
  readonly env: Record<string, string>;
  #engine!: ReturnType<typeof start>;
  #worker!: ReturnType<typeof start>;
  #writer!: ReturnType<typeof start>;

  constructor(dir: string, tag: string) {
    this.prefix = `bench-pages-${process.pid}-${tag}`;
    this.env = { REDIS_URL: redisUrl, DOCBATCH_PREFIX: this.prefix, BLOB_DIR: join(dir, `blobs-${tag}`), OUT_DIR: join(dir, `out-${tag}`) };
  }

  async start(): Promise<void> {
    // The blob store exists before the worker starts (its start checks refuse a missing one).
    mkdirSync(this.env.BLOB_DIR!, { recursive: true });
    this.#engine = start(['engine', '--port', '0', '--speed', '1000', '--output-tokens-min', '1', '--output-tokens-max', '2'], {});
    const engineUrl = await this.#engine.url;
    this.#worker = start(['worker'], { ...this.env, ENGINE_URL: engineUrl, RENDERERS: values.renderers!, RENDERER: values.renderer! });
    this.#writer = start(['writer'], this.env);
    await renderersIdle(this.#worker.child.pid!);
  }

  /** `docbatch enqueue --wait` of `files`, timed, with the CPU each part used meanwhile. */
  async round(files: string[]): Promise<RoundResult> {
    await renderersIdle(this.#worker.child.pid!);
    const parts = { worker: this.#worker.child.pid!, engine: this.#engine.child.pid!, writer: this.#writer.child.pid! };
    const before = Object.fromEntries(Object.entries(parts).map(([k, pid]) => [k, treeCpu(pid)]));
    // Not its reaped children's (a recycled renderer's CPU moves into its parent's cutime).
    const ownCpu = (pid: number) => processes().find((p) => p.pid === pid)?.own ?? 0;
    const redisCpu = () => processes().filter((p) => p.cmdline.startsWith('redis-server')).reduce((n, p) => n + p.cpu, 0);
    const workerOwnBefore = ownCpu(parts.worker);
    const redisBefore = redisCpu();
    const t0 = performance.now();
    const t0Ms = Date.now();
    // `time` (bash) adds the CPU of enqueue and its inspector child.
    const run = spawnSync('bash', ['-c', 'TIMEFORMAT="%U %S"; time "$@" >/dev/null', 'enqueue', BIN, 'enqueue', '--wait', '--json', ...files], {
      env: { ...process.env, ...this.env, LOG_FORMAT: 'json' },
      encoding: 'utf8',
    });
    const seconds = (performance.now() - t0) / 1000;
    if (run.status !== 0) throw new Error(`enqueue --wait exited ${run.status}: ${run.stderr.slice(-1500)}`);
    const enqueueCpu = (run.stderr.trim().split('\n').at(-1) ?? '0 0').split(' ').reduce((n, v) => n + Number(v), 0);
    const used = Object.entries(parts).map(([k, pid]) => `${k} ${(treeCpu(pid) - before[k]!).toFixed(1)}`);
    // The worker's own process (queue, requests, base64) apart from its renderers; Redis too.
    used[0] += ` (own ${(ownCpu(parts.worker) - workerOwnBefore).toFixed(1)})`;
    return { seconds, settling: await this.settling(t0Ms), cpu: `${used.join(', ')}, enqueue ${enqueueCpu.toFixed(1)}, redis ${(redisCpu() - redisBefore).toFixed(1)} CPU s` };
  }

  /**
   * Where the round's time went: the first unit settled this long after enqueue started (the
   * CLI, the inspector, the first page), and the span from there to the last unit settled.
   */
  private async settling(t0Ms: number): Promise<RoundResult['settling']> {
    const redis = new Redis(redisUrl);
    try {
      let first = Infinity;
      let last = -Infinity;
      for (const id of await redis.zrangebyscore(`${this.prefix}:docs`, t0Ms - 1000, '+inf')) {
        const [started, finished] = await redis.hmget(`${this.prefix}:doc:${id}`, 'started_at', 'finished_at');
        if (!started || !finished) continue;
        first = Math.min(first, Date.parse(started));
        last = Math.max(last, Date.parse(finished));
      }
      return Number.isFinite(first) ? { firstAfter: (first - t0Ms) / 1000, seconds: (last - first) / 1000 } : null;
    } finally {
      redis.disconnect();
    }
  }

  async stop(): Promise<void> {
    await Promise.all([this.#worker, this.#writer, this.#engine].filter(Boolean).map((p) => stop(p.child)));
    const redis = new Redis(redisUrl);
    await purgePrefix(redis, this.prefix);
    redis.disconnect();
  }
}

/** The suite's documents as distinct files for one round (a byte appended after %%EOF). */
function copies(spec: { docs: Array<[string, number]>; copies: number }, dir: string, round: number): { files: string[]; pages: PageRef[] } {
  const files: string[] = [];
  const pages: PageRef[] = [];
  for (let copy = 0; copy < spec.copies; copy++) {
    for (const [name, count] of spec.docs) {
      const file = join(dir, `${basename(name, '.pdf')}-r${round}-${copy}.pdf`);
      copyFileSync(join(values.corpus!, 'pdf', name), file);
      appendFileSync(file, `\n% round ${round} copy ${copy}\n`);
      files.push(file);
      for (let p = 1; p <= count; p++) pages.push({ file, page: p });
    }
  }
  return { files, pages };
}

spawnSync('bash', [join(import.meta.dirname, '..', 'scripts', 'ensure-render-tools.sh')], { stdio: 'inherit' });
const tools = TOOLS.filter((t) => values.tools === 'all' || t.name === values.tools).filter((t) => {
  if (available(t.name)) return true;
  console.log(`${t.name}: not installed (scripts/ensure-render-tools.sh failed); skipped`);
  return false;
});
const rounds = Number(values.rounds);
const dir = mkdtempSync(join(tmpdir(), 'docbatch-bench-pages-'));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
try {
  for (const suite of values.suites!.split(',')) {
    const spec = SUITES[suite];
    if (!spec) throw new Error(`unknown suite ${suite} (corpus, manual)`);
    const best = new Map<string, { seconds: number; load: string }>();
    const keep = (name: string, seconds: number) => {
      if (seconds < (best.get(name)?.seconds ?? Infinity)) best.set(name, { seconds, load: load() });
    };
    const docbatchName = `docbatch end to end (RENDERER=${values.renderer})`;
    const paired: number[] = [];
    const deployment = new Deployment(dir, suite);
    let pageCount = 0;
    try {
      await deployment.start();
      // Round 0 is the deployment's first work (renderers just started: V8 still compiling
      // PDFium's wasm); it is shown, not counted. Each round enqueues new documents.
      for (let round = 0; round <= rounds; round++) {
        const { files, pages } = copies(spec, dir, round);
        pageCount = pages.length;
        if (round === 0) console.log(`\n${suite}: ${pages.length} pages (${files.length} documents), longest side 1288 px, PNG, ${cores} cores, ${rounds} rounds after a first one`);
        const r = await deployment.round(files);
        const what = round === 0 ? 'first (not counted)' : `round ${round}`;
        console.log(`  ${what}: docbatch ${(pages.length / r.seconds).toFixed(1)} pages/s (${r.cpu}; load ${load()})`);
        if (r.settling) {
          // The rate once pages flow: the round's fixed start (CLI, inspection, first page) apart.
          console.log(`  ${what}: first page settled after ${r.settling.firstAfter.toFixed(2)} s; then ${((pages.length - 1) / r.settling.seconds).toFixed(1)} pages/s until the last`);
        }
        if (round === 0) continue;
        keep(docbatchName, r.seconds);
        for (const tool of tools) {
          const out = join(dir, `${tool.name}-${suite}-${round}`);
          mkdirSync(out);
          const seconds = await runTool(tool, pages, cores, out, 1288);
          rmSync(out, { recursive: true, force: true });
          keep(tool.name, seconds);
          if (tool.name === 'mutool') paired.push(seconds / r.seconds);
          console.log(`  ${what}: ${tool.name} ${(pages.length / seconds).toFixed(1)} pages/s (load ${load()})`);
        }
        for (const f of files) rmSync(f);
      }
    } finally {
      await deployment.stop();
    }
    const mutool = best.get('mutool');
    console.log(`| ${suite} (${pageCount} pages), best round of each | pages/s | × mutool | load |`);
    console.log('|---|---:|---:|---:|');
    for (const [name, r] of best) {
      const vs = mutool ? (mutool.seconds / r.seconds).toFixed(2) : '-';
      console.log(`| ${name} | ${(pageCount / r.seconds).toFixed(1)} | ${vs} | ${r.load} |`);
    }
    if (paired.length > 0) console.log(`docbatch / mutool round by round: ${paired.map((x) => x.toFixed(2)).join(', ')} (median ${median(paired).toFixed(2)})`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
