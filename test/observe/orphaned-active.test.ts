/**
 * Every GPU worker killed (kill -9, a lost machine) with units in flight: their jobs stay
 * `active` in BullMQ, since only a worker of the queue runs the stalled check that hands them
 * out again. `docbatch_queue_jobs{state="active"}` kept saying work was being done, so the alert
 * for work nobody takes (operations.md) never fired. `docbatch_queue_jobs_orphaned` counts the
 * active jobs whose lock has expired; the alert (test/observe/prometheus-queries.test.ts) takes
 * them for waiting work. A real `docbatch worker` process, killed; real Redis and emulator.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { startDashboard } from '../../src/observe/dashboard.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { openQueueCounter, registerQueueMetrics } from '../../src/observe/metrics.ts';
import { BIN } from '../helpers/cli.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { parseMetrics, sumOf } from './fixtures.ts';

let p: Pipeline | undefined;
let child: ChildProcess | undefined;
afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await p?.stop();
});

it('counts the active jobs of a killed worker as orphaned once their lock expires, and a new worker takes them', async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 0.5 }, config: { lockDurationMs: 2000, stalledIntervalMs: 1000 } });
  const pdf = join(p.dir, 'orphans.pdf');
  writeFileSync(pdf, numberedPdf(2));
  const [id] = acceptedIds(await p.enqueue([pdf]));
  child = spawn(BIN, ['worker'], {
    env: { PATH: process.env.PATH, REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, ENGINE_URL: p.engine.url, BLOB_DIR: p.config.blobDir, RENDERERS: '1', LOCK_DURATION_MS: '2000', STALLED_INTERVAL_MS: '1000', LOG_FORMAT: 'json' },
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const counter = openQueueCounter(p.config);
  try {
    const registry = new Registry();
    registerQueueMetrics(registry, counter.queues);
    const scrape = async () => parseMetrics(await registry.metrics());
    let m = await scrape();
    // Both pages at the worker: nothing waits or is left to feed, all is active.
    for (const end = Date.now() + 30_000; sumOf(m, 'docbatch_queue_jobs', { queue: 'infer', state: 'active' }) < 2 && Date.now() < end; m = await scrape()) await new Promise((r) => setTimeout(r, 100));
    const active = sumOf(m, 'docbatch_queue_jobs', { queue: 'infer', state: 'active' });
    expect(active, 'units in flight at the worker').toBeGreaterThan(0);
    // While its worker holds them, none is orphaned.
    expect(sumOf(m, 'docbatch_queue_jobs_orphaned', { queue: 'infer' })).toBe(0);
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
    // Its locks expire after LOCK_DURATION_MS; no worker runs to hand the jobs out again.
    await new Promise((r) => setTimeout(r, 3000));
    m = await scrape();
    const stillActive = sumOf(m, 'docbatch_queue_jobs', { queue: 'infer', state: 'active' });
    expect(stillActive, 'BullMQ still counts them active').toBeGreaterThan(0);
    expect(sumOf(m, 'docbatch_queue_jobs_orphaned', { queue: 'infer' })).toBe(stillActive);
    // Once the killed worker's heartbeat goes silent (20 s), the dashboard says its units wait
    // (they were neither waiting nor fed, so it said nothing).
    const dash = await startDashboard({ redisUrl: p.config.redisUrl, prefix: p.config.prefix, attempts: 1, dashboardHost: '127.0.0.1', dashboardPort: 0, dashboardPublicNames: [], dashboardUser: undefined, dashboardPassword: undefined, dashboardToken: undefined, dashboardReadOnly: false }, silentLogger(), { backlogTtlMs: 200 });
    try {
      let notes: string[] = [];
      for (const end = Date.now() + 40_000; Date.now() < end; await new Promise((r) => setTimeout(r, 500))) {
        notes = ((await (await fetch(`${dash.url}/api/workers`)).json()) as { notes: string[] }).notes;
        if (notes.some((n) => n.startsWith('no worker has a heartbeat'))) break;
      }
      expect(notes).toContainEqual(expect.stringMatching(/^no worker has a heartbeat under this prefix \(1 silent\): 2 units wait/));
    } finally {
      await dash.close();
    }
    // A new worker's stalled check takes them back: nothing orphaned, the document is written.
    await p.startWorker();
    const [final] = await p.wait([id!], 60_000);
    expect(final!.record).toMatchObject({ state: 'written', done: 2 });
    expect(sumOf(await scrape(), 'docbatch_queue_jobs_orphaned', { queue: 'infer' })).toBe(0);
  } finally {
    await counter.close();
  }
}, 120_000);
