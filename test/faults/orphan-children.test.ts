/**
 * A renderer or inspection child whose parent is SIGKILLed while the child is deep in a slow
 * page: PDFium's synchronous wasm call blocks the child's event loop, so it cannot see its IPC
 * channel close, and it used to run on until the page ended (seconds, or forever for a page
 * that never ends), holding a core and hundreds of MB with nobody to read its answer. It must
 * go within a couple of seconds. A real `docbatch worker` and a real `docbatch enqueue`, real
 * children, read off /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, afterEach, expect, it } from 'vitest';
import { deathSignalLauncher } from '../../src/render/parent-watch.ts';
import { BIN } from '../helpers/cli.ts';
import { startPipeline, acceptedIds, type Pipeline } from '../helpers/pipeline.ts';
import { buildPdf, pagesPdf, slowPage, tempDir } from '../render/fixtures.ts';
import { until } from '../helpers/until.ts';

const tmp = tempDir('orphans');
let p: Pipeline | undefined;
const spawned: ChildProcess[] = [];
const grandchildren: number[] = [];
afterEach(async () => {
  for (const c of spawned.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  // A child the test found orphaned is not left running on the machine.
  for (const pid of grandchildren.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await p?.stop();
  p = undefined;
});
afterAll(() => tmp.cleanup());

/** Pids of `parent`'s children running src/render/child.ts in `mode` (from /proc; Linux). */
function childrenOf(parent: number, mode: 'render' | 'inspect'): number[] {
  return (readDir('/proc') ?? [])
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => stat(pid)?.ppid === parent && (readText(`/proc/${pid}/cmdline`) ?? '').includes(`render/child.ts\0${mode}`));
}

function readDir(path: string): string[] | undefined {
  try {
    return readdirSync(path);
  } catch {
    return undefined;
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return undefined;
  }
}

/** State, parent and CPU time (user + system, ms) of a process; undefined once it is gone. */
function stat(pid: number): { state: string; ppid: number; cpuMs: number } | undefined {
  const text = readText(`/proc/${pid}/stat`);
  if (!text) return undefined;
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Clock ticks are 100 a second on Linux.
  return { state: f[0]!, ppid: Number(f[1]), cpuMs: (Number(f[11]) + Number(f[12])) * 10 };
}

/** A zombie (reaped late, or never, by whoever inherited it) runs nothing: it counts as gone. */
const alive = (pid: number) => {
  const s = stat(pid);
  return s !== undefined && s.state !== 'Z' && s.state !== 'X';
};

/** Waits until `pid` has burnt `ms` of CPU more than it had when called: busy in the slow work. */
async function busyFor(pid: number, ms: number): Promise<void> {
  const start = stat(pid)?.cpuMs ?? 0;
  await until(`child ${pid} busy for ${ms} ms`, () => (stat(pid)?.cpuMs ?? Infinity) - start >= ms, 60_000);
}

/** How long `pid` lives on after this call (at most `limitMs`; the limit when it is still there). */
async function lingers(pid: number, limitMs: number): Promise<number> {
  const started = Date.now();
  while (alive(pid) && Date.now() - started < limitMs) await new Promise((r) => setTimeout(r, 25));
  return Date.now() - started;
}

function spawnBin(args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(BIN, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'ignore', 'ignore'] });
  spawned.push(child);
  return child;
}

it('a worker SIGKILLed while its renderer draws a slow page: the renderer is gone within 2 s', async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false });
  // Tens of seconds of PDFium stroking in one synchronous wasm call.
  const pdf = tmp.write('slow.pdf', pagesPdf([slowPage(500_000)]));
  acceptedIds(await p.enqueue([pdf]));
  const worker = spawnBin(['worker'], {
    REDIS_URL: p.config.redisUrl,
    DOCBATCH_PREFIX: p.config.prefix,
    ENGINE_URL: p.engine.url,
    BLOB_DIR: p.config.blobDir,
    RENDERERS: '1',
    RENDER_TIMEOUT_MS: '600000',
  });
  await until('the worker to start its renderer', () => childrenOf(worker.pid!, 'render').length === 1);
  const renderer = childrenOf(worker.pid!, 'render')[0]!;
  grandchildren.push(renderer);
  // Where setpriv has --pdeathsig the kernel ties the child to its worker (no pid to watch for).
  expect(readText(`/proc/${renderer}/cmdline`)?.split('\0').at(-2)).toBe(deathSignalLauncher() ? '' : String(worker.pid));
  await busyFor(renderer, 1500);
  worker.kill('SIGKILL');
  await new Promise((r) => worker.once('exit', r));
  expect(await lingers(renderer, 10_000), 'ms the renderer lived on after its worker').toBeLessThan(2000);
}, 120_000);

it('a producer SIGKILLed while its inspector reads a slow file: the inspector is gone within 2 s', async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false });
  // 150³ pages from a 3 KB file (one page referenced over and over): PDFium reads its page
  // dictionaries for many seconds in one synchronous call.
  const fan = 150;
  const kids = (n: number) => Array.from({ length: fan }, () => `${n} 0 R`).join(' ');
  const pdf = tmp.write(
    'pages.pdf',
    buildPdf([
      '<< /Type /Catalog /Pages 2 0 R >>',
      `<< /Type /Pages /Kids [${kids(3)}] /Count ${fan ** 3} /MediaBox [0 0 100 100] >>`,
      `<< /Type /Pages /Parent 2 0 R /Kids [${kids(4)}] /Count ${fan ** 2} >>`,
      `<< /Type /Pages /Parent 3 0 R /Kids [${kids(5)}] /Count ${fan} >>`,
      '<< /Type /Page /Parent 4 0 R >>',
    ]),
  );
  // Above the page cap (INPUT_MAX_PAGES, 100,000 by default) such a file is refused at once; raised
  // here so that the inspector reads the page tree.
  const producer = spawnBin(['enqueue', pdf], { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, INPUT_MAX_PAGES: String(fan ** 3 * 2) });
  await until('the producer to start its inspector', () => childrenOf(producer.pid!, 'inspect').length === 1);
  const inspector = childrenOf(producer.pid!, 'inspect')[0]!;
  grandchildren.push(inspector);
  await busyFor(inspector, 1500);
  producer.kill('SIGKILL');
  await new Promise((r) => producer.once('exit', r));
  expect(await lingers(inspector, 10_000), 'ms the inspector lived on after its producer').toBeLessThan(2000);
}, 120_000);

// The same with the watchdog thread that stands in where the kernel has no parent-death signal
// (src/render/parent-watch.ts; on this Linux the renderers above get `setpriv --pdeathsig`): a
// small parent process runs one renderer with `parentWatch: 'thread'`, and is SIGKILLed mid-page.
it('without the kernel\'s parent-death signal, the watchdog thread ends a renderer whose parent was SIGKILLed mid-page', async () => {
  const pdf = tmp.write('slow-thread.pdf', pagesPdf([slowPage(500_000)]));
  const processModule = fileURLToPath(new URL('../../src/render/renderer-process.ts', import.meta.url));
  const script = `
    const { RendererProcess } = await import(${JSON.stringify(processModule)});
    const child = new RendererProcess({ mode: 'render', settings: { maxOpenDocuments: 1, maxImagePixels: 1e8, fonts: 'native' }, heapMb: 256, parentWatch: 'thread' });
    await child.ready;
    console.log(child.pid);
    child.request({ type: 'render', path: ${JSON.stringify(pdf)}, blobId: 'b', renderer: 'pdfium',
      job: { page: 1, format: 'png', quality: 90, text: false, pngCompressionLevel: 1, longestSide: 1288, maxPixels: 1e8, minLongestSide: 64 } }).catch(() => {});
    setInterval(() => {}, 1000);
  `;
  const parent = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  spawned.push(parent);
  const renderer = await new Promise<number>((resolve, reject) => {
    parent.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
    parent.once('exit', (code) => reject(new Error(`the parent exited ${code} before its renderer started`)));
  });
  grandchildren.push(renderer);
  // Started without setpriv: its command line is Node's with the parent's pid last.
  expect(readText(`/proc/${renderer}/cmdline`)?.split('\0').at(-2)).toBe(String(parent.pid));
  await busyFor(renderer, 1500);
  parent.kill('SIGKILL');
  await new Promise((r) => parent.once('exit', r));
  expect(await lingers(renderer, 10_000), 'ms the renderer lived on after its parent').toBeLessThan(2000);
}, 120_000);
