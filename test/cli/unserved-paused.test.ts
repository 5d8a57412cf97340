/**
 * A model whose only worker has paused its intake (BUDGET_USD spent) takes no more work, and
 * its documents wait for ever. `status` listed the worker as not taking work, but `enqueue
 * --wait` said nothing: the worker has a heartbeat and lists the queue, so the work counted as
 * served. Now `--wait` (and `status`) say the work waits and why, and the worker's
 * `docbatch_worker_intake_paused{reason="budget"}` is 1. A real worker and emulator, the real CLI.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { WorkerMetrics } from '../../src/observe/metrics.ts';
import { BIN, runCli } from '../helpers/cli.ts';
import { parseMetrics, sumOf } from '../observe/fixtures.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

it('enqueue --wait says the work of a model whose only worker has spent its budget waits, and why', async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 2 } });
  const pdf = join(p.dir, 'budget.pdf');
  writeFileSync(pdf, numberedPdf(40));
  acceptedIds(await p.enqueue([pdf]));
  const worker = await p.startWorker({ gpuHourlyUsd: 3600, budgetUsd: 0.5, initialInFlight: 2, maxInFlight: 2, batchSize: 1 });
  const metrics = new WorkerMetrics({ processMetrics: false });
  metrics.attach(worker);
  const paused = async (reason: string) => sumOf(parseMetrics(await metrics.metrics()), 'docbatch_worker_intake_paused', { reason });
  expect(await paused('budget')).toBe(0);
  for (let i = 0; i < 400 && !worker.overBudget; i++) await new Promise((r) => setTimeout(r, 25));
  expect(worker.overBudget).toBe(true);
  // Prometheus sees why it takes nothing (it saw only units stop).
  expect(await paused('budget')).toBe(1);
  expect(await paused('engine')).toBe(0);
  // The heartbeat says so (written on pause).
  for (let i = 0; i < 100 && !(await p.redis.hget(`${p.config.prefix}:workers`, p.config.workerName))?.includes('budget'); i++) await new Promise((r) => setTimeout(r, 50));

  // `--wait` says what holds the work up at once, not after its default 10 s (WAIT_NOTES_AFTER_MS):
  // the heartbeat it reads is there before it starts.
  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, LOG_FORMAT: 'json', WAIT_NOTES_AFTER_MS: '0' };
  const child = spawn(BIN, ['enqueue', pdf, '--wait'], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const note = /work that names no model \(1 document\): no worker that serves it takes work now, so its work waits \(worker [^:]+: intake paused: BUDGET_USD is spent\)/;
  for (const end = Date.now() + 40_000; !note.test(stderr) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 200));
  child.kill('SIGKILL');
  expect(stderr).toMatch(new RegExp(`! ${note.source}`));
  const status = await runCli(['status'], env, { timeoutMs: 30_000 });
  expect(status.stdout).toMatch(note);
}, 90_000);
