/**
 * A long PDF through an engine that dies, as vLLM's V1 engine does, whenever more than N
 * requests with images run at once: 500 to everything, /health 503, port closed, back after a
 * restart delay. Prints pages done and failed, engine deaths, and the window the worker ended on.
 *
 *   node_modules/.bin/node bench/oom.ts [--pages 120] [--oom-at 6] [--speed 5] [--restart-delay 3000]
 *
 * Target (issue: GPU workers that keep the engine full): every page, no page failed, at most 8
 * deaths, with the worker's default window settings. Processes as a user runs them: `docbatch
 * engine`, `docbatch worker` (METRICS_PORT for the window), `docbatch writer`, `docbatch enqueue
 * --wait`, on the Redis at REDIS_URL under a throwaway prefix.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { numberedPdf } from '../scripts/lib/pdf-writer.ts';
import { purgePrefix } from '../src/store/admin.ts';

const { values } = parseArgs({
  options: {
    pages: { type: 'string', default: '120' },
    'oom-at': { type: 'string', default: '6' },
    speed: { type: 'string', default: '5' },
    'restart-delay': { type: 'string', default: '3000' },
  },
});
const BIN = join(import.meta.dirname, '..', 'bin', 'docbatch');
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `bench-oom-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'docbatch-bench-oom-'));
const env = { ...process.env, REDIS_URL: redisUrl, DOCBATCH_PREFIX: prefix, BLOB_DIR: join(dir, 'blobs'), OUT_DIR: join(dir, 'out'), LOG_FORMAT: 'json', LOG_LEVEL: 'warn' };

function start(args: string[], extra: Record<string, string> = {}): { child: ChildProcess; firstLine: Promise<string> } {
  const child = spawn(BIN, args, { env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'ignore'] });
  const firstLine = new Promise<string>((resolve) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
  });
  return { child, firstLine };
}

const stop = async (c: ChildProcess) => {
  if (c.exitCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  await exited;
};

mkdirSync(env.BLOB_DIR, { recursive: true }); // the worker refuses a blob store that is not there
const pdf = join(dir, 'book.pdf');
writeFileSync(pdf, numberedPdf(Number(values.pages)));
const engine = start(['engine', '--port', '0', '--speed', values.speed!, '--oom-at', values['oom-at']!, '--oom-mode', 'death', '--restart-delay', values['restart-delay']!]);
const engineUrl = /http:\/\/[\d.:]+/.exec(await engine.firstLine)![0];
const metricsPort = await freePort();
const worker = start(['worker'], { ENGINE_URL: engineUrl, METRICS_PORT: String(metricsPort), METRICS_HOST: '127.0.0.1' });
const writer = start(['writer']);
try {
  const t0 = performance.now();
  const run = spawnSync(BIN, ['enqueue', '--wait', '--json', pdf], { env, encoding: 'utf8' });
  const seconds = (performance.now() - t0) / 1000;
  const stats = (await (await fetch(`${engineUrl}/emulator/stats`)).json()) as { deaths: number; maxRunningImages: number; completed: number };
  const report = JSON.parse(readFileSync(join(dir, 'out', 'book.report.json'), 'utf8')) as { units: number; completed: number; failed: unknown[] };
  const windowLine = await windowFromMetrics();
  console.log(`engine dies above ${values['oom-at']} concurrent image requests; ${values.pages}-page PDF; restart delay ${values['restart-delay']} ms; speed x${values.speed}`);
  console.log(`pages written      ${report.completed}/${report.units}   failed ${report.failed.length}   (enqueue --wait exit ${run.status})`);
  console.log(`engine deaths      ${stats.deaths}   (target: at most 8)`);
  console.log(`window at the end  ${windowLine}`);
  console.log(`wall time          ${seconds.toFixed(1)} s`);
} finally {
  await Promise.all([stop(worker.child), stop(writer.child), stop(engine.child)]);
  const redis = new Redis(redisUrl);
  await purgePrefix(redis, prefix);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
}

/** The worker's docbatch_worker_window gauge. */
async function windowFromMetrics(): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return /^docbatch_worker_window(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? 'unknown';
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}
