/**
 * A unit that BullMQ fails by itself because its workers kept dying on it (stalled more than
 * allowed) is settled by the worker that finds it, as UNIT_STALLED, and counted like any unit
 * that failed for good: `docbatch_units_failed_total{code="UNIT_STALLED"}`. Real Redis, the
 * engine emulator, a real worker and writer; the stalls are BullMQ's own mark on the job (`defa`,
 * what its stalled checker writes after the last stall allowed), so the next worker to take the
 * job fails it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { unitJobId } from '../../queues/contracts.ts';
import type { InferWorker } from '../../src/infer/worker.ts';
import { createInferWorker } from '../../src/infer/worker-parts.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { WorkerMetrics } from '../../src/observe/metrics.ts';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { parseMetrics, sumOf } from './fixtures.ts';

let p: Pipeline | undefined;
let worker: InferWorker | undefined;
afterAll(async () => {
  await worker?.close();
  await p?.stop();
});

it('counts a unit failed for stalling in docbatch_units_failed_total, as status and the report do', async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 5 } });
  const pdf = join(p.dir, 'stalls.pdf');
  writeFileSync(pdf, numberedPdf(3));
  const [docId] = acceptedIds(await p.enqueue([pdf]));
  const jobKey = `${p.config.prefix}:infer:${unitJobId(docId!, 1, 1)}`;
  expect(await p.store.redis.exists(jobKey)).toBe(1);
  await p.store.redis.hset(jobKey, 'defa', 'job stalled more than allowable limit');

  const metrics = new WorkerMetrics({ processMetrics: false, labels: { worker: 'gpu0' } });
  worker = createInferWorker(p.config, silentLogger());
  metrics.attach(worker);
  await worker.start();
  const [done] = await p.wait([docId!], 60_000);
  expect(done!.record).toMatchObject({ done: 2, failed: 1 });
  const report = JSON.parse(readFileSync(join(p.config.outDir, 'stalls.report.json'), 'utf8')) as { failed: Array<{ unit: number; code: string }> };
  expect(report.failed).toMatchObject([{ unit: 1, code: 'UNIT_STALLED' }]);

  const samples = parseMetrics(await metrics.metrics());
  expect(sumOf(samples, 'docbatch_units_completed_total')).toBe(2);
  expect(sumOf(samples, 'docbatch_units_failed_total', { code: 'UNIT_STALLED' })).toBe(1);
}, 90_000);
