/**
 * A worker's /metrics and /health during a real run: real Redis, the engine emulator (made to
 * run out of memory above one concurrent image, so the engine dies and restarts), a worker with
 * its metrics server, and the writer. Every family docs/operations.md lists must show a non-zero
 * value in some scrape taken while documents were still in flight; /health proves Redis, the
 * engine and the worker loop, and says 503 when any of them is not there.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferWorker } from '../../src/infer/worker.ts';
import { createInferWorker } from '../../src/infer/worker-parts.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { openQueueCounter, registerQueueMetrics, WorkerMetrics, type QueueCounter } from '../../src/observe/metrics.ts';
import { healthReport, redisCheck, startMetricsServer, workerChecks, type HealthReport, type MetricsServer } from '../../src/observe/metrics-server.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { parseMetrics, SMALL_CONTEXT, SMALL_IMAGE, sumOf, writeInputs } from './fixtures.ts';

let p: Pipeline;
let worker: InferWorker;
let metrics: WorkerMetrics;
let counter: QueueCounter;
let server: MetricsServer;
const scrapes: Array<ReturnType<typeof parseMetrics>> = [];
let healthAtStart: { status: number; body: HealthReport };

async function get(path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${server.url}${path}`);
  return { status: res.status, text: await res.text() };
}

beforeAll(async () => {
  p = await startPipeline({
    file: import.meta.filename,
    worker: false,
    // Slow enough that pages overlap at the engine; more than one image at once is an engine death.
    emulator: { speed: 4, maxModelLen: SMALL_CONTEXT, oomAtConcurrentImages: 1, deathExitMs: 50, restartDelayMs: 300 },
    config: { imageSize: SMALL_IMAGE, initialInFlight: 4, batchSize: 4, attempts: 2 },
  });
  metrics = new WorkerMetrics({ labels: { worker: 'test-gpu0' } });
  worker = createInferWorker(p.config, silentLogger());
  metrics.attach(worker);
  await worker.start();
  counter = openQueueCounter(p.config);
  registerQueueMetrics(metrics.registry, counter.queues);
  server = await startMetricsServer({
    registry: metrics.registry,
    checks: workerChecks(worker, { queue: counter.queues.find((q) => q.name === 'infer')!.queue, name: p.config.workerName }),
    port: 0,
  });
  const h = await get('/health');
  healthAtStart = { status: h.status, body: JSON.parse(h.text) as HealthReport };

  const inputs = await writeInputs(p.dir, { pages: 8, tag: 'metrics' });
  const ids = acceptedIds(await p.enqueue([inputs.pdf, inputs.chat]));
  // Scrape while the documents are in flight; stop once they are written.
  let done = false;
  const run = p.wait(ids, 90_000).finally(() => (done = true));
  while (!done) {
    const text = (await get('/metrics')).text;
    if (!done) scrapes.push(parseMetrics(text));
    await new Promise((r) => setTimeout(r, 100));
  }
  await run;
  // A unit that fails for good is marked failed in BullMQ just after its result is recorded, so
  // its document can be written first: one last scrape sees the queue as the run left it.
  await new Promise((r) => setTimeout(r, 500));
  scrapes.push(parseMetrics((await get('/metrics')).text));
}, 120_000);

afterAll(async () => {
  await worker?.close({ deadlineMs: 2000 });
  await server?.close();
  await counter?.close();
  await p?.stop();
});

/** The largest value a family reached over the scrapes taken during the run. */
function peak(name: string, match: Record<string, string> = {}): number {
  return Math.max(0, ...scrapes.map((s) => sumOf(s, name, match)));
}

describe('worker /metrics during a run', () => {
  it('took scrapes while units were in flight', () => {
    expect(scrapes.length).toBeGreaterThan(3);
    expect(peak('docbatch_queue_jobs', { queue: 'infer', state: 'active' })).toBeGreaterThan(0);
  });

  it('counts jobs per queue and state, and Redis is up', () => {
    expect(peak('docbatch_queue_jobs', { queue: 'infer', state: 'waiting' }) + peak('docbatch_queue_jobs', { queue: 'infer', state: 'active' })).toBeGreaterThan(0);
    expect(peak('docbatch_queue_jobs', { queue: 'infer', state: 'completed' })).toBeGreaterThan(0);
    expect(peak('docbatch_queue_jobs', { queue: 'infer', state: 'failed' })).toBeGreaterThan(0);
    expect(peak('docbatch_redis_up')).toBe(1);
  });

  it('counts units completed and failed, the failures by error code', () => {
    expect(peak('docbatch_units_completed_total', { kind: 'page' })).toBeGreaterThan(0);
    expect(peak('docbatch_units_completed_total', { kind: 'chunk' })).toBeGreaterThan(0);
    expect(peak('docbatch_units_failed_total', { kind: 'chunk', code: 'CONTEXT_TOO_LONG' })).toBeGreaterThan(0);
  });

  it('shows the window, requests in flight, units waiting at the gate and active units', () => {
    expect(peak('docbatch_worker_window')).toBeGreaterThan(0);
    expect(peak('docbatch_worker_in_flight')).toBeGreaterThan(0);
    expect(peak('docbatch_worker_gate_waiting')).toBeGreaterThan(0);
    expect(peak('docbatch_worker_active_units')).toBeGreaterThan(0);
  });

  it('counts engine OOMs, deaths and downtime', () => {
    expect(peak('docbatch_engine_oom_total')).toBeGreaterThan(0);
    expect(peak('docbatch_engine_deaths_total')).toBeGreaterThan(0);
    expect(peak('docbatch_engine_down_seconds_total')).toBeGreaterThan(0.05);
    expect(peak('docbatch_engine_busy_seconds_total')).toBeGreaterThan(0);
    // The engine was seen down at some scrape or other, and the window controller paused.
    expect(Math.min(...scrapes.map((s) => sumOf(s, 'docbatch_engine_up')))).toBe(0);
  });

  it('has request latency and render time histograms, and token counters', () => {
    expect(peak('docbatch_request_duration_seconds_count', { outcome: 'ok' })).toBeGreaterThan(0);
    expect(peak('docbatch_request_duration_seconds_count', { outcome: 'error' })).toBeGreaterThan(0);
    expect(peak('docbatch_request_duration_seconds_sum')).toBeGreaterThan(0);
    expect(peak('docbatch_render_duration_seconds_count')).toBeGreaterThan(0);
    expect(peak('docbatch_prompt_tokens_total')).toBeGreaterThan(0);
    expect(peak('docbatch_completion_tokens_total')).toBeGreaterThan(0);
  });

  it('labels every series with the worker, and counters never go down between scrapes', () => {
    const last = scrapes.at(-1)!;
    expect(last.filter((s) => s.name.startsWith('docbatch_')).every((s) => s.labels.worker === 'test-gpu0')).toBe(true);
    for (const name of ['docbatch_units_completed_total', 'docbatch_engine_down_seconds_total', 'docbatch_engine_deaths_total', 'docbatch_prompt_tokens_total']) {
      const series = scrapes.map((s) => sumOf(s, name));
      for (let i = 1; i < series.length; i++) expect(series[i]).toBeGreaterThanOrEqual(series[i - 1]!);
    }
  });
});

describe('worker /health', () => {
  it('answered 200 at start with Redis, the engine and the loop checked', () => {
    expect(healthAtStart.status).toBe(200);
    expect(healthAtStart.body.ok).toBe(true);
    expect(healthAtStart.body.checks.redis!.ok).toBe(true);
    expect(healthAtStart.body.checks.engine).toMatchObject({ ok: true, state: 'up' });
    expect(healthAtStart.body.checks.loop).toMatchObject({ ok: true, running: true, paused: false, closing: false, registered: true });
  });

  it('answers 503 while the engine is dead, and 200 once it is back', async () => {
    p.engine.kill();
    const down = await get('/health');
    expect(down.status).toBe(503);
    const body = JSON.parse(down.text) as HealthReport;
    expect(body.checks.engine!.ok).toBe(false);
    expect(body.checks.redis!.ok).toBe(true);
    let back = down;
    for (let i = 0; i < 100 && back.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      back = await get('/health');
    }
    expect(back.status).toBe(200);
  });

  it('answers 503 when Redis does not answer (a check that times out fails)', async () => {
    const dead = new Redis('redis://127.0.0.1:1', { maxRetriesPerRequest: null, lazyConnect: true, retryStrategy: () => 1000 });
    dead.on('error', () => {});
    dead.connect().catch(() => {});
    try {
      const report = await healthReport({ redis: redisCheck(dead) }, 300);
      expect(report.ok).toBe(false);
      expect(report.checks.redis).toMatchObject({ ok: false, error: expect.stringMatching(/no answer within 300 ms/) });
    } finally {
      dead.disconnect();
    }
  });

  it('fails the loop check when Redis does not list the worker\'s connection', async () => {
    const infer = counter.queues.find((q) => q.name === 'infer')!.queue;
    const report = await healthReport(workerChecks(worker, { queue: infer, name: 'a-worker-that-is-not-there' }));
    expect(report.ok).toBe(false);
    expect(report.checks.loop).toMatchObject({ ok: false, running: true, registered: false });
  });

  it('serves only /metrics and /health', async () => {
    expect((await get('/')).status).toBe(404);
    expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  it('answers 503 once the worker is stopping (its loop no longer takes units)', async () => {
    const closing = worker.close({ deadlineMs: 2000 });
    const h = await get('/health');
    await closing;
    expect(h.status).toBe(503);
    expect((JSON.parse(h.text) as HealthReport).checks.loop).toMatchObject({ ok: false, closing: true });
  });
});
