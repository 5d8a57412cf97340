/**
 * What it costs: engine time attributed to each document, its cost at GPU_HOURLY_USD in the
 * report and in `docbatch status`, and BUDGET_USD pausing intake once spent.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});


it('reports carry engine time and cost; status sums them', async () => {
  p = await startPipeline({ file: import.meta.filename, emulator: { speed: 5 }, config: { gpuHourlyUsd: 3.6 } });
  const pdf = join(p.dir, 'priced.pdf');
  writeFileSync(pdf, numberedPdf(12));
  const ids = acceptedIds(await p.enqueue([pdf]));
  const [done] = await p.wait(ids);
  const report = JSON.parse(readFileSync(join(p.config.outDir, 'priced.report.json'), 'utf8'));
  expect(report.engine_seconds).toBeGreaterThan(0);
  // Engine time is shared among the requests in flight: it cannot exceed the run's wall time.
  const wall = (Date.parse(done!.record.finishedAt!) - Date.parse(done!.record.startedAt!)) / 1000;
  expect(report.engine_seconds).toBeLessThanOrEqual(wall + 1);
  expect(report.gpu_hourly_usd).toBe(3.6);
  expect(report.cost_usd).toBeCloseTo(report.engine_seconds * 0.001, 5);
  expect(report.cost_per_1000_units).toBeCloseTo((report.cost_usd / 12) * 1000, 4);

  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, GPU_HOURLY_USD: '3.6' };
  const status = await runCli(['status', '--json'], env);
  expect(status.code).toBe(0);
  const lines = status.stdout.trim().split('\n').map((l) => JSON.parse(l));
  expect(lines[0]).toMatchObject({ docId: ids[0], state: 'written', units: 12, done: 12, failed: 0 });
  expect(lines[0].cost_usd).toBeCloseTo(report.cost_usd, 5);
  expect(lines.at(-1).total).toMatchObject({ documents: 1, units: 12, done: 12 });
  const text = await runCli(['status'], env);
  expect(text.stdout).toMatch(/total: 1 documents, 12\/12 units \(0 failed\).*\$\d+\.\d{4}/);
}, 90_000);

it('with failed units, the report and status give the same cost per 1,000 units answered', async () => {
  p = await startPipeline({ file: import.meta.filename, emulator: { speed: 5 }, config: { gpuHourlyUsd: 3.6 } });
  // Pages 2, 5 and 7 are refused by the engine for good (BAD_REQUEST): 7 of 10 are answered.
  p.engine.setFaults({ reject: { matchText: ['Page 2 of 10', 'Page 5 of 10', 'Page 7 of 10'] } });
  const pdf = join(p.dir, 'partly.pdf');
  writeFileSync(pdf, numberedPdf(10));
  const ids = acceptedIds(await p.enqueue([pdf]));
  await p.wait(ids);
  const report = JSON.parse(readFileSync(join(p.config.outDir, 'partly.report.json'), 'utf8'));
  expect(report).toMatchObject({ units: 10, completed: 7, failures_by_code: { BAD_REQUEST: 3 } });
  expect(report.cost_usd).toBeGreaterThan(0);
  // What 1,000 answered pages cost: the failed pages' engine time is paid for by the answered ones.
  expect(report.cost_per_1000_units).toBeCloseTo((report.cost_usd / 7) * 1000, 5);

  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, GPU_HOURLY_USD: '3.6' };
  const lines = (await runCli(['status', '--json'], env)).stdout.trim().split('\n').map((l) => JSON.parse(l));
  expect(lines[0]).toMatchObject({ docId: ids[0], done: 7, failed: 3, cost_usd: report.cost_usd, cost_per_1000_units: report.cost_per_1000_units });
  expect(lines.at(-1).total).toMatchObject({ done: 7, failed: 3, cost_usd: report.cost_usd, cost_per_1000_units: report.cost_per_1000_units });
  const text = await runCli(['status'], env);
  expect(text.stdout).toContain(`$${report.cost_per_1000_units.toFixed(4)} per 1,000 units answered`);

  // Nothing answered: no figure per 1,000 (not 0, not infinite), in both.
  p.engine.setFaults({ reject: { matchText: ['Page 1 of 1'] } });
  const none = join(p.dir, 'none.pdf');
  writeFileSync(none, numberedPdf(1));
  const [noneId] = acceptedIds(await p.enqueue([none]));
  await p.wait([noneId!]);
  const noneReport = JSON.parse(readFileSync(join(p.config.outDir, 'none.report.json'), 'utf8'));
  expect(noneReport).toMatchObject({ completed: 0, cost_per_1000_units: null });
  const noneStatus = JSON.parse((await runCli(['status', noneId!, '--json'], env)).stdout.split('\n')[0]!);
  expect(noneStatus).toMatchObject({ docId: noneId, done: 0, cost_per_1000_units: null });
}, 90_000);

it('BUDGET_USD pauses intake once the spend reaches it', async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 2 } });
  const pdf = join(p.dir, 'budget.pdf');
  writeFileSync(pdf, numberedPdf(40));
  const [docId] = acceptedIds(await p.enqueue([pdf]));
  const worker = await p.startWorker({ gpuHourlyUsd: 3600, budgetUsd: 0.5, initialInFlight: 2, maxInFlight: 2, batchSize: 1 });
  for (let i = 0; i < 400 && !worker.overBudget; i++) await new Promise((r) => setTimeout(r, 25));
  expect(worker.overBudget).toBe(true);
  // In-flight units finish; nothing new starts.
  for (let i = 0; i < 800 && worker.activeUnits > 0; i++) await new Promise((r) => setTimeout(r, 25));
  expect(worker.activeUnits).toBe(0);
  const before = (await p.store.get(docId!))!.done;
  await new Promise((r) => setTimeout(r, 1500));
  const after = (await p.store.get(docId!))!;
  expect(after.done).toBe(before);
  expect(after.done).toBeLessThan(40);
  expect(after.state).toBe('running');
}, 60_000);
