/**
 * Engine time a request took and that came to nothing (it hung until REQUEST_TIMEOUT_MS, was
 * closed, and the unit was sent again) was spent on the GPU: the report's `engine_seconds`
 * (and so `cost_usd`, status and BUDGET_USD) count it, as they count the time of answers. The
 * emulator hangs one request; a real worker and writer.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

const TIMEOUT_MS = 4000;

it('a request that timed out is charged its engine time', async () => {
  p = await startPipeline({ file: import.meta.filename, config: { imageSize: 256, requestTimeoutMs: TIMEOUT_MS, gpuHourlyUsd: 3.6 } });
  // The next inference request but one hangs (the next after it is past this small run).
  p.engine.setFaults({ hang: { every: p.engine.stats().requests + 2 } });
  const pdf = join(p.dir, 'hung.pdf');
  writeFileSync(pdf, numberedPdf(3, 20));
  const [docId] = acceptedIds(await p.enqueue([pdf]));
  const [done] = await p.wait([docId!], 60_000);
  expect(done!.record).toMatchObject({ state: 'written', done: 3, failed: 0 });
  // One request hung and was closed by the worker.
  expect(p.engine.stats().aborted).toBe(1);
  const report = JSON.parse(readFileSync(join(p.config.outDir, 'hung.report.json'), 'utf8')) as { engine_seconds: number; cost_usd: number };
  // The hung request was at the engine for TIMEOUT_MS, alone for most of it (the others answer
  // in about a second): most of that is its share.
  expect(report.engine_seconds).toBeGreaterThan((TIMEOUT_MS - 1500) / 1000);
  expect(report.cost_usd).toBeCloseTo(report.engine_seconds / 1000, 6);
}, 90_000);
