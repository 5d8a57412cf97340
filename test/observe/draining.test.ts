/**
 * A worker told to stop (SIGTERM: close) finishes the units it holds and takes no new ones. Its
 * heartbeat was not written while it drained, so `status` and the dashboard showed it taking
 * work until it went silent. Now its heartbeat says it is stopping at once, and goes when it
 * has stopped. Real Redis, a slow emulator, a real worker.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { readWorkers, workerProblem } from '../../src/observe/workers.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterAll(async () => {
  await p?.stop();
});

it('a draining worker says it is stopping, then its heartbeat goes', async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 0.5 } });
  const worker = await p.startWorker();
  const pdf = join(p.dir, 'drain.pdf');
  writeFileSync(pdf, numberedPdf(4));
  acceptedIds(await p.enqueue([pdf]));
  for (const end = Date.now() + 30_000; worker.activeUnits === 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
  expect(worker.activeUnits).toBeGreaterThan(0);
  const closed = worker.close({ deadlineMs: 30_000 });
  let problem: string | null = null;
  for (const end = Date.now() + 3000; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
    const [beat] = await readWorkers(p.redis, p.config.prefix);
    problem = beat ? workerProblem(beat) : 'gone';
    if (problem !== null) break;
  }
  expect(problem).toMatch(/^stopping: takes no new units, finishing the \d+ it holds$/);
  await closed;
  expect(await readWorkers(p.redis, p.config.prefix)).toEqual([]);
}, 90_000);
