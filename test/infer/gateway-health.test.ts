/**
 * A gateway in front of the engine (a proxy, an API gateway) that answers its own /health and
 * /metrics with 502/503 for ever while it passes completions and /v1/models on. An idle worker
 * asked /health after /metrics failed, took the 503 for an engine death, and marked the engine
 * down: intake paused, and /health never answering 2xx, it waited for ever with work queued
 * (and its own /health said 503). A /health that has never once answered 2xx is no signal:
 * /v1/models decides. An engine whose /health did answer is still believed when it fails.
 * Real Redis, a real emulator behind a real node:http gateway, a real worker.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import type { InferWorker } from '../../src/infer/worker.ts';
import { healthReport, workerChecks } from '../../src/observe/metrics-server.ts';
import { startScripted, type Scripted } from '../engine/scripted-server.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline;
let gateway: Scripted;
let worker: InferWorker;

beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false });
  gateway = await startScripted(async (_req, res, seen) => {
    if (seen.path === '/health' || seen.path === '/metrics') {
      res.writeHead(seen.path === '/health' ? 503 : 502, { 'content-type': 'text/plain' }).end('no healthy upstream');
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(seen.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length' && k !== 'connection') headers[k] = v;
    const r = await fetch(`${p.engine.url}${seen.path}`, { method: seen.method, headers, ...(seen.method === 'POST' ? { body: seen.body } : {}) });
    const text = await r.text();
    res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/plain', 'content-length': Buffer.byteLength(text) }).end(text);
  });
  worker = await p.startWorker({ engineUrl: gateway.url });
}, 60_000);

afterAll(async () => {
  await worker?.close({ deadlineMs: 2000 });
  await gateway?.close();
  await p?.stop();
});

it('an idle worker behind it does not mark its engine down, and takes work', async () => {
  // Idle for several /metrics reads (every second) and /health probes.
  const until = Date.now() + 4000;
  while (Date.now() < until) {
    expect(worker.engine.monitor.isDown, 'the engine marked down while completions work').toBe(false);
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(gateway.seen.filter((s) => s.path === '/health').length, 'the worker asked /health').toBeGreaterThan(0);
  const report = await healthReport(workerChecks(worker));
  expect(report.checks.engine, JSON.stringify(report)).toMatchObject({ ok: true });
  const pdf = join(p.dir, 'through-gateway.pdf');
  writeFileSync(pdf, numberedPdf(3));
  const [final] = await p.wait(acceptedIds(await p.enqueue([pdf])), 30_000);
  expect(final!.record).toMatchObject({ state: 'written', done: 3, failed: 0 });
}, 60_000);

it('behind it, an engine down for a while (completions 502) is waited for with a growing hold, not sent round until the unit fails', async () => {
  let failUntil = Date.now() + 12_000;
  let chats = 0;
  const pass = gateway.handler;
  gateway.handler = async (req, res, seen) => {
    if (seen.method === 'POST' && seen.path === '/v1/chat/completions' && seen.headers['x-request-id'] !== 'docbatch-image-probe') {
      chats++;
      if (Date.now() < failUntil) {
        res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway: no upstream');
        return;
      }
    }
    return pass(req, res, seen);
  };
  try {
    const pdf = join(p.dir, 'upstream-down.pdf');
    writeFileSync(pdf, numberedPdf(1, 7));
    const [final] = await p.wait(acceptedIds(await p.enqueue([pdf])), 45_000);
    expect(final!.record, 'answered once the engine behind the gateway is back').toMatchObject({ state: 'written', done: 1, failed: 0 });
    // Sent at the start, then after holds of 5 s and 10 s: a few sends, not one per /v1/models.
    expect(chats).toBeLessThanOrEqual(5);
  } finally {
    gateway.handler = pass;
    failUntil = 0;
  }
}, 60_000);

it('an engine whose /health answered is believed when it fails: dead, /health 503 while /v1/models answers, it is marked down', async () => {
  const direct = await p.startWorker({ engineUrl: p.engine.url, workerName: 'direct' });
  await new Promise((r) => setTimeout(r, 500));
  // VLLM_KEEP_ALIVE_ON_ENGINE_DEATH: the port stays open, /health 503, /v1/models still 200.
  p.engine.setFaults({ keepAliveOnDeath: true, restartDelayMs: 600_000 });
  p.engine.kill();
  expect((await fetch(`${p.engine.url}/health`)).status).toBe(503);
  expect((await fetch(`${p.engine.url}/v1/models`)).status).toBe(200);
  // Idle, it asks /health every 5 s (its /metrics still answers).
  const end = Date.now() + 10_000;
  while (!direct.engine.monitor.isDown && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  expect(direct.engine.monitor.isDown).toBe(true);
  await direct.close({ deadlineMs: 2000 });
}, 30_000);
