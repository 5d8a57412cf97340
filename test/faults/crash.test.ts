/**
 * Processes dying and services restarting (../shared/reference/reliability.md, fault cases 1,
 * 6, 7): a worker killed with SIGKILL mid-batch, a worker stopped with SIGTERM (draining, and
 * forced past its deadline), Redis restarted mid-run. Each time every page and chunk ends up in
 * the output exactly once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { openQueue } from '../../queues/connect.ts';
import type { Config } from '../../src/config.ts';
import { startPrivateRedis, type PrivateRedis } from '../../src/demo/private-redis.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { until } from '../helpers/until.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'docbatch');
const FAST_LOCKS: Partial<Config> = { lockDurationMs: 3000, stalledIntervalMs: 1000 };
/**
 * The engine is slow (speed 5) so that units are in flight at the fault; once the fault is over
 * the rest of the document has nothing more to show, and runs at the pipeline's usual speed.
 */
const RECOVERY_SPEED = 50;

let p: Pipeline | undefined;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await p?.stop();
  p = undefined;
});

/** A `docbatch worker` in its own process, configured like the pipeline's. */
function spawnWorker(config: Config, extra: Record<string, string> = {}): { child: ChildProcess; logs: () => string; exited: Promise<number | null> } {
  let logs = '';
  const child = spawn(BIN, ['worker'], {
    env: {
      PATH: process.env.PATH,
      REDIS_URL: config.redisUrl,
      DOCBATCH_PREFIX: config.prefix,
      ENGINE_URL: config.engineUrl,
      BLOB_DIR: config.blobDir,
      RENDERERS: '1',
      LOCK_DURATION_MS: String(config.lockDurationMs),
      STALLED_INTERVAL_MS: String(config.stalledIntervalMs),
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  children.push(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, logs: () => logs, exited };
}

function expectEveryPageOnce(md: string, pages: number): void {
  expect([...md.matchAll(/^<!-- page (\d+)/gm)].map((m) => Number(m[1]))).toEqual(Array.from({ length: pages }, (_, i) => i + 1));
  for (const [n, page] of parsePages(md)) {
    expect(page.failed, `page ${n}`).toBeNull();
    expect(page.body).toContain(`Page ${n} of ${pages}`);
  }
}

describe('crashes and restarts', () => {
  it('kill -9 of a worker mid-batch, then another worker: every page and chunk exactly once', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 5 }, config: FAST_LOCKS });
    const pdf = join(p.dir, 'book.pdf');
    writeFileSync(pdf, numberedPdf(80));
    const chat = join(import.meta.dirname, '..', '..', 'samples', 'conversations.json');
    const ids = acceptedIds(await p.enqueue([pdf, chat]));
    const victim = spawnWorker(p.config);
    await until('the first worker to finish 15 pages', async () => ((await p!.store.get(ids[0]!))?.done ?? 0) >= 15);
    const infer = openQueue('infer', p.config, p.redis);
    expect(await infer.getActiveCount()).toBeGreaterThan(0); // killed mid-batch, units in flight
    victim.child.kill('SIGKILL');
    await victim.exited;
    p.engine.setTiming({ speed: RECOVERY_SPEED });
    await p.startWorker();
    const done = await p.wait(ids, 120_000);
    expectEveryPageOnce(readFileSync(join(p.config.outDir, 'book.md'), 'utf8'), 80);
    const lines = readFileSync(join(p.config.outDir, 'conversations.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => `${l.conversation_id}/${l.chunk}`)).toEqual([...new Set(lines.map((l) => `${l.conversation_id}/${l.chunk}`))]);
    expect(lines).toHaveLength(done[1]!.record.units);
    for (const d of done) expect(d.record.failed).toBe(0);
    // Tokens counted once per unit: the report's totals are its lines' (no unit the killed
    // worker had settled counted again by the one that took over), and no more than the engine did.
    const report = JSON.parse(readFileSync(join(p.config.outDir, 'conversations.report.json'), 'utf8')) as { prompt_tokens: number; completion_tokens: number; units_without_usage: number };
    const sum = (key: 'prompt_tokens' | 'completion_tokens') => lines.reduce((n, l: { usage: Record<string, number> }) => n + l.usage[key]!, 0);
    expect(report).toMatchObject({ prompt_tokens: sum('prompt_tokens'), completion_tokens: sum('completion_tokens'), units_without_usage: 0 });
    const bookReport = JSON.parse(readFileSync(join(p.config.outDir, 'book.report.json'), 'utf8')) as { prompt_tokens: number; completion_tokens: number };
    expect(bookReport.completion_tokens + report.completion_tokens).toBeLessThanOrEqual(p.engine.stats().generationTokens);
    await infer.close();
  }, 180_000);

  it('SIGTERM drains: in-flight units finish, the process exits 0, nothing is lost', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 5 }, config: FAST_LOCKS });
    const pdf = join(p.dir, 'doc.pdf');
    writeFileSync(pdf, numberedPdf(40));
    const ids = acceptedIds(await p.enqueue([pdf]));
    const w = spawnWorker(p.config, { SHUTDOWN_TIMEOUT_MS: '20000' });
    await until('10 pages done', async () => ((await p!.store.get(ids[0]!))?.done ?? 0) >= 10);
    const started = Date.now();
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(w.logs()).toContain('worker stopped');
    const infer = openQueue('infer', p.config, p.redis);
    expect(await infer.getActiveCount()).toBe(0);
    p.engine.setTiming({ speed: RECOVERY_SPEED });
    await p.startWorker();
    await p.wait(ids, 60_000);
    expectEveryPageOnce(readFileSync(join(p.config.outDir, 'doc.md'), 'utf8'), 40);
    await infer.close();
  }, 120_000);

  it('SIGTERM with units stuck at a hung engine: forced at the deadline, units back in the queue with no attempt used', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { hang: { every: 1 } }, config: FAST_LOCKS });
    const pdf = join(p.dir, 'stuck.pdf');
    writeFileSync(pdf, numberedPdf(6));
    const ids = acceptedIds(await p.enqueue([pdf]));
    const infer = openQueue('infer', p.config, p.redis);
    const w = spawnWorker(p.config, { SHUTDOWN_TIMEOUT_MS: '1500' });
    await until('requests at the engine', async () => p!.engine.stats().requests >= 6);
    const started = Date.now();
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(w.logs()).toMatch(/returning unfinished units to the queue/);
    expect(await infer.getActiveCount()).toBe(0);
    const waiting = await infer.getJobs(['wait'], 0, 100);
    expect(waiting).toHaveLength(6);
    expect(waiting.every((j) => j.attemptsMade === 0)).toBe(true);
    expect((await p.store.get(ids[0]!))?.done).toBe(0);
    await infer.close();
  }, 60_000);

  describe('Redis restarted mid-run', () => {
    let redis: PrivateRedis | undefined;
    let dir = '';
    afterEach(async () => {
      await p?.stop();
      p = undefined;
      await redis?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('workers and writer carry on by themselves; every page exactly once', async () => {
      dir = await mkdtemp(join(tmpdir(), 'docbatch-redis-'));
      redis = await startPrivateRedis({ dir });
      p = await startPipeline({ file: import.meta.filename, emulator: { speed: 5 }, config: { ...FAST_LOCKS, redisUrl: redis.url } });
      const pdf = join(p.dir, 'restart.pdf');
      writeFileSync(pdf, numberedPdf(60));
      const ids = acceptedIds(await p.enqueue([pdf]));
      await until('10 pages done', async () => ((await p!.store.get(ids[0]!))?.done ?? 0) >= 10);
      await redis.stop();
      await new Promise((r) => setTimeout(r, 1000));
      redis = await startPrivateRedis({ dir, port: redis.port });
      p.engine.setTiming({ speed: RECOVERY_SPEED });
      await p.wait(ids, 120_000);
      expectEveryPageOnce(readFileSync(join(p.config.outDir, 'restart.md'), 'utf8'), 60);
    }, 180_000);
  });
});
