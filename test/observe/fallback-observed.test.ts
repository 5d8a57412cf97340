/**
 * A worker whose primary engine is dead and whose fallback engine takes its units, as operators
 * see it: its /health (it takes work, so 200), its heartbeat as `status` and the dashboard read
 * it (taking work, its requests in flight counted), and its /metrics (requests at the fallback
 * are requests in flight; its busy time counts). Real Redis, two emulators, a real worker.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import type { InferWorker } from '../../src/infer/worker.ts';
import { WorkerMetrics } from '../../src/observe/metrics.ts';
import { startMetricsServer, workerChecks, type HealthReport, type MetricsServer } from '../../src/observe/metrics-server.ts';
import { readWorkers, workerNote, workerProblem } from '../../src/observe/workers.ts';
import { runCli } from '../helpers/cli.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { parseMetrics, sumOf } from './fixtures.ts';
import { until } from '../helpers/until.ts';

let p: Pipeline;
let fallback: Emulator;
let worker: InferWorker;
let metrics: WorkerMetrics;
let server: MetricsServer;

beforeAll(async () => {
  // The primary dies for good when killed; the fallback is slow enough that requests overlap.
  p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { restartDelayMs: 600_000, deathExitMs: 50 } });
  fallback = await startEmulator({ speed: 2, outputTokensMin: 20, outputTokensMax: 60 });
  worker = await p.startWorker({ fallbackEngineUrls: [fallback.url], fallbackAfterMs: 300, engineReleaseMs: 600_000, initialInFlight: 4 });
  metrics = new WorkerMetrics({ labels: { worker: 'fb-gpu0' }, processMetrics: false });
  metrics.attach(worker);
  server = await startMetricsServer({ registry: metrics.registry, checks: workerChecks(worker), port: 0 });
  p.engine.kill();
  await until('the worker sends to its fallback', () => worker.engine.monitor.isDown && worker.engines.pick() === worker.engines.fallbacks[0] && !worker.loop.paused);
}, 60_000);

afterAll(async () => {
  await worker?.close({ deadlineMs: 2000 });
  await server?.close();
  await p?.stop();
  await fallback?.close();
});

describe('a worker sending to its fallback while its primary is dead', () => {
  it('/health answers 200: the engine it sends to answers, and its loop runs', async () => {
    const res = await fetch(`${server.url}/health`);
    const body = (await res.json()) as HealthReport;
    expect(body.checks.engine, JSON.stringify(body)).toMatchObject({ ok: true, outage: true });
    expect(body.checks.loop).toMatchObject({ ok: true, paused: false });
    expect(res.status).toBe(200);
  });

  it('/metrics says no outage of the worker: its fallback serves, only the primary is down (each engine labelled)', async () => {
    const m = parseMetrics(await (await fetch(`${server.url}/metrics`)).text());
    const one = (name: string, labels: Record<string, string> = {}) => m.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    // The old family keeps its meaning (the primary), so dashboards built on it still work ...
    expect(sumOf(m, 'docbatch_engine_up')).toBe(0);
    // ... and an alert on no engine serving does not fire: units go to the fallback.
    expect(one('docbatch_engine_serving').map((s) => s.value)).toEqual([1]);
    expect(one('docbatch_engine_endpoint_up', { role: 'primary', engine: worker.engine.label }).map((s) => s.value)).toEqual([0]);
    expect(one('docbatch_engine_endpoint_up', { role: 'fallback', engine: worker.engines.fallbacks[0]!.label }).map((s) => s.value)).toEqual([1]);
    const down = (role: string) => one('docbatch_engine_endpoint_down_seconds_total', { role })[0]?.value;
    expect(down('primary'), 'the primary is down now').toBeGreaterThan(0);
    expect(down('fallback'), 'the fallback never was').toBe(0);
    expect(one('docbatch_engine_endpoint_deaths_total', { role: 'fallback' }).map((s) => s.value)).toEqual([0]);
  });

  it("status says the worker takes work through its fallback, its engine being down (it said only 'all taking work')", async () => {
    let beat: Awaited<ReturnType<typeof readWorkers>>[number] | undefined;
    await until('a heartbeat naming the fallback', async () => {
      [beat] = await readWorkers(p.redis, p.config.prefix);
      return beat?.sendingTo === worker.engines.fallbacks[0]!.label;
    }, 12_000);
    expect(workerNote(beat!)).toBe(`its engine ${worker.engine.label} is down: its fallback ${worker.engines.fallbacks[0]!.label} takes its units`);
    const r = await runCli(['status'], { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix }, { timeoutMs: 30_000 });
    expect(r.stdout).toContain(`worker ${beat!.name}: its engine ${worker.engine.label} is down: its fallback ${worker.engines.fallbacks[0]!.label} takes its units`);
  }, 30_000);

  it('counts its requests at the fallback in /metrics and its heartbeat, and status calls it taking work', async () => {
    const pdf = join(p.dir, 'forty.pdf');
    writeFileSync(pdf, numberedPdf(40));
    const ids = acceptedIds(await p.enqueue([pdf]));
    let inFlight = 0;
    await until('requests in flight at the fallback', async () => {
      inFlight = sumOf(parseMetrics(await (await fetch(`${server.url}/metrics`)).text()), 'docbatch_worker_in_flight');
      return inFlight > 0;
    }, 10_000).catch(() => undefined);
    expect(inFlight, 'docbatch_worker_in_flight while units are at the fallback').toBeGreaterThan(0);
    // The next heartbeat (every 5 s) is written while units are in flight.
    let beatInFlight = 0;
    let problem: string | null = 'unread';
    await until('a heartbeat with requests in flight', async () => {
      const [beat] = await readWorkers(p.redis, p.config.prefix);
      if (!beat) return false;
      beatInFlight = beat.inFlight;
      problem = workerProblem(beat);
      return beat.inFlight > 0;
    }, 12_000).catch(() => undefined);
    expect(beatInFlight, 'the heartbeat counts requests at the fallback').toBeGreaterThan(0);
    expect(problem, 'status and the dashboard: taking work').toBeNull();
    await p.wait(ids, 60_000);
    const after = parseMetrics(await (await fetch(`${server.url}/metrics`)).text());
    expect(sumOf(after, 'docbatch_units_completed_total')).toBe(40);
    expect(sumOf(after, 'docbatch_engine_busy_seconds_total'), 'seconds with requests at an engine').toBeGreaterThan(0);
  }, 90_000);
});
