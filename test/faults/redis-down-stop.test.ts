/**
 * Fault cases 6 and 7 of ../shared/reference/reliability.md that crash.test.ts does not cover:
 * - SIGTERM while Redis is down: a `docbatch worker` (idle, or with units at a hung engine) and a
 *   `docbatch writer` still exit within their shutdown deadline;
 * - Redis restarted while the processes are idle: once it is back, a document enqueued then is
 *   done and written by the worker and the writer that were waiting, without a restart of theirs
 *   (the classic failure: a blocking connection that never comes back while PING still answers).
 *
 * Redis goes away behind the TCP forwarder of test/helpers/redis-proxy.ts (the Redis other tests
 * share is not touched); the restart is a private redis-server stopped and started on its port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import type { Config } from '../../src/config.ts';
import { startPrivateRedis, type PrivateRedis } from '../../src/demo/private-redis.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { startRedisProxy, type RedisProxy } from '../helpers/redis-proxy.ts';
import { until } from '../helpers/until.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'docbatch');

let p: Pipeline | undefined;
let proxy: RedisProxy | undefined;
let privateRedis: PrivateRedis | undefined;
let redisDir = '';
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await proxy?.up().catch(() => {});
  await p?.stop();
  p = undefined;
  await proxy?.close();
  proxy = undefined;
  await privateRedis?.stop();
  privateRedis = undefined;
  if (redisDir) await rm(redisDir, { recursive: true, force: true });
  redisDir = '';
});

/** `docbatch worker` or `docbatch writer` in its own process, configured like the pipeline's. */
function spawnDocbatch(command: 'worker' | 'writer', config: Config, extra: Record<string, string>) {
  let logs = '';
  const child = spawn(BIN, [command], {
    env: {
      PATH: process.env.PATH,
      REDIS_URL: config.redisUrl,
      DOCBATCH_PREFIX: config.prefix,
      ENGINE_URL: config.engineUrl,
      BLOB_DIR: config.blobDir,
      OUT_DIR: config.outDir,
      RENDERERS: '1',
      LOCK_DURATION_MS: '3000',
      STALLED_INTERVAL_MS: '1000',
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  children.push(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, logs: () => logs, exited };
}

it.each([
  ['idle', false],
  ['with units in flight at a hung engine', true],
] as const)('SIGTERM while Redis is down: a worker %s and a writer exit within their deadline', async (_how, busy) => {
  // The worker started after it checks for stalled units every second (its units come back then, not after 30 s).
  p = await startPipeline({ file: import.meta.filename, worker: false, config: { lockDurationMs: 3000, stalledIntervalMs: 1000 }, ...(busy ? { emulator: { hang: { every: 1 } } } : {}) });
  proxy = await startRedisProxy(p.config.redisUrl);
  const env = { REDIS_URL: proxy.url, SHUTDOWN_TIMEOUT_MS: '2000' };
  const worker = spawnDocbatch('worker', p.config, env);
  const writer = spawnDocbatch('writer', p.config, env);
  await until('the worker started', () => worker.logs().includes('"worker started"'), 30_000);
  await until('the writer started', () => writer.logs().includes('"writer started"'), 30_000);
  const ids: string[] = [];
  if (busy) {
    const pdf = join(p.dir, 'hung.pdf');
    writeFileSync(pdf, numberedPdf(4));
    ids.push(...acceptedIds(await p.enqueue([pdf])));
    await until('requests at the engine', () => p!.engine.stats().requests >= 3, 30_000);
  }
  await proxy.down();
  await new Promise((r) => setTimeout(r, 1000));
  const started = Date.now();
  worker.child.kill('SIGTERM');
  writer.child.kill('SIGTERM');
  const timed = (e: typeof worker.exited) => e.then((r) => ({ ...r, ms: Date.now() - started }));
  const [w, wr] = await Promise.all([timed(worker.exited), timed(writer.exited)]);
  expect(w.signal, worker.logs().slice(-2000)).toBeNull();
  expect(wr.signal, writer.logs().slice(-2000)).toBeNull();
  // The deadline (2 s), then closing without Redis: forced, not waiting for it (was 7 s more for
  // the worker, 12 s for the writer: each step waited its own timeout for a Redis that was away).
  // ioredis destroys a socket it ended 2 s later at the most.
  expect(w.ms, worker.logs().slice(-3000)).toBeLessThan(7000);
  expect(wr.ms, writer.logs().slice(-3000)).toBeLessThan(7000);
  if (busy) {
    // Nothing lost: the units it held go back once their locks expire, and are done once.
    p.engine.setFaults({ hang: null });
    await proxy.up();
    await p.startWorker();
    const [done] = await p.wait(ids, 60_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 4, failed: 0 });
    expect([...parsePages(readFileSync(join(p.config.outDir, 'hung.md'), 'utf8')).keys()]).toEqual([1, 2, 3, 4]);
  }
}, 90_000);

it('Redis restarted while the worker and the writer are idle: a document enqueued after is done and written', async () => {
  redisDir = await mkdtemp(join(tmpdir(), 'docbatch-redis-idle-'));
  privateRedis = await startPrivateRedis({ dir: redisDir });
  p = await startPipeline({ file: import.meta.filename, config: { redisUrl: privateRedis.url, lockDurationMs: 3000, stalledIntervalMs: 1000 } });
  const first = join(p.dir, 'before.pdf');
  writeFileSync(first, numberedPdf(2, 1));
  await p.wait(acceptedIds(await p.enqueue([first])), 60_000);
  // Idle a moment (blocking reads parked), then Redis goes away for a while and comes back.
  await new Promise((r) => setTimeout(r, 1500));
  await privateRedis.stop();
  await new Promise((r) => setTimeout(r, 3000));
  privateRedis = await startPrivateRedis({ dir: redisDir, port: privateRedis.port });
  await new Promise((r) => setTimeout(r, 3000));
  const second = join(p.dir, 'after.pdf');
  writeFileSync(second, numberedPdf(3, 2));
  const [done] = await p.wait(acceptedIds(await p.enqueue([second])), 60_000);
  expect(done!.record).toMatchObject({ state: 'written', done: 3, failed: 0 });
  const pages = parsePages(readFileSync(join(p.config.outDir, 'after.md'), 'utf8'));
  expect([...pages.keys()]).toEqual([1, 2, 3]);
}, 120_000);
