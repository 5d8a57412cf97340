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
import { readWorkers, workerProblem } from '../../src/observe/workers.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { parseMetrics, sumOf } from './fixtures.ts';

let p: Pipeline;
let fallback: Emulator;
let worker: InferWorker;
let metrics: WorkerMetrics;
let server: MetricsServer;

const until = async (what: string, ok: () => Promise<boolean> | boolean, ms = 30_000) => {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (await ok()) return;
  throw new Error(`timed out waiting for ${what}`);
};

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
});
