/**
 * The lost-lock race (../shared/reference/reliability.md, fault case 3): a unit whose BullMQ lock
 * is lost while the engine answers it. The stalled check hands the unit to another run (another
 * worker, or this one again) while the first request is still at the engine, and the first
 * answer comes back before its worker notices the loss (locks renew every half of
 * LOCK_DURATION_MS). Both answers reach a settle: the first without its lock (first write wins),
 * the second under the lock it holds. The unit must be recorded once, the document written once,
 * each answer's cost counted once, and the output hold the first answer.
 *
 * Real Redis, the emulator behind a scripted proxy (which takes the lock away and orders the two
 * answers), two real workers and a real writer in this process.
 *
 * The order is the proxy's, not the clock's: page 1's answer is held until the unit's second run
 * has ended (its job completed), so the document cannot be written between the two answers. It
 * was, in an earlier version of this test that waited for the first answer in the results hash:
 * the write that follows the last unit's settle by a few milliseconds deletes that hash, the wait
 * missed it, the second request hung at the proxy for 30 s and was then dropped (seen by the
 * worker as an engine fault), and the job was still active a minute later; and an answer that
 * comes after its document was written is not counted (docs/operations.md).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { jobLockKey, openQueue, type TypedQueue } from '../../queues/connect.ts';
import { unitJobId } from '../../queues/contracts.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { chatText, startScriptedEngine, type ScriptedEngine } from '../helpers/scripted-engine.ts';
import { until } from '../helpers/until.ts';

let p: Pipeline;
let scripted: ScriptedEngine;
let infer: TypedQueue<'infer'>;
let docId = '';
const written: string[] = [];
const page3: number[] = [];
let second: () => void = () => {};
const secondArrived = new Promise<void>((r) => (second = r));
/** Whether the race's unit has ended under the lock of its second run. */
const raceJobDone = async () => ['completed', 'failed'].includes(await infer.getJobState(unitJobId(docId, 1, 2)));

beforeAll(async () => {
  p = await startPipeline({
    file: import.meta.filename,
    worker: false,
    emulator: { speed: 20, outputTokensMin: 20, outputTokensMax: 40 },
    // Locks renewed every 15 s: the first run does not notice its loss before its answer is back.
    config: { imageSize: 256, pageMaxTokens: 200, lockDurationMs: 30_000, stalledIntervalMs: 1000 },
    writer: { onWritten: (id) => written.push(id) },
  });
  infer = openQueue('infer', p.config, p.redis);
  scripted = await startScriptedEngine(p.engine.url, async (body) => {
    const page = Number(/Page (\d+) of \d+/.exec(chatText(body))?.[1]);
    // A worker may ask before enqueue has returned the id.
    await until('the document id', () => docId !== '', 30_000, 10);
    if (page === 1) {
      // Not answered before the race is over: the document stays unwritten until both answers settled.
      await until('both runs of page 3 done', raceJobDone, 60_000, 100).catch(() => {});
      return null;
    }
    if (page !== 3) return null;
    const n = page3.push(Date.now());
    if (n === 1) {
      // The lock is lost while the engine answers: the stalled check hands the unit out again.
      await p.redis.del(jobLockKey(p.config.prefix, 'infer', unitJobId(docId, 1, 2)));
      await secondArrived;
      return { content: 'Page 3, the first answer.', usage: { prompt: 100, completion: 10 } };
    }
    second();
    // The second answer after the first has settled (without its lock).
    await until('the first answer recorded', async () => (await p.store.unitResult(docId, 1, 2)) !== null, 30_000);
    return { content: 'Page 3, the second answer.', usage: { prompt: 100, completion: 10 } };
  });
  await p.startWorker({ engineUrl: scripted.url, workerName: 'race-a' });
  await p.startWorker({ engineUrl: scripted.url, workerName: 'race-b' });
});

afterAll(async () => {
  await infer?.close();
  await p?.stop();
  await scripted?.close();
});

it('a unit whose lock is lost while the engine answers is recorded once, and its document written once', async () => {
  const s0 = p.engine.stats();
  const pdf = join(p.dir, 'race.pdf');
  writeFileSync(pdf, numberedPdf(3, 20));
  docId = acceptedIds(await p.enqueue([pdf]))[0]!;
  const [done] = await p.wait([docId], 90_000);
  expect(done!.record.state).toBe('written');
  expect(page3).toHaveLength(2);
  // Its second run ended it: the first run's completion was refused (its lock was gone).
  expect(await infer.getJobState(unitJobId(docId, 1, 2))).toBe('completed');
  // Time for a second write, were one coming (the reconciler runs every second).
  await new Promise((r) => setTimeout(r, 3000));
  expect(written).toEqual([docId]);
  const record = (await p.store.get(docId))!;
  expect(record).toMatchObject({ state: 'written', done: 3, failed: 0 });
  const pages = parsePages(readFileSync(join(p.config.outDir, 'race.md'), 'utf8'));
  expect([...pages.keys()]).toEqual([1, 2, 3]);
  expect(pages.get(3)!.body).toBe('Page 3, the first answer.');
  // Each answer counted once: pages 1 and 2 as the emulator counted them, page 3's two answers 110 tokens each.
  const s1 = p.engine.stats();
  expect(record.promptTokens).toBe(s1.promptTokens - s0.promptTokens + 200);
  expect(record.completionTokens).toBe(s1.generationTokens - s0.generationTokens + 20);
}, 120_000);
