/**
 * A unit whose answer (or failure) finds a result already there when it settles: another worker
 * held the unit before, lost its lock (Redis away, its process stalled) and recorded its own
 * answer where no result was (first write wins) while this worker ran the unit again. This
 * worker's answers are discarded, but the engine processed them: the report and `status --json`
 * count them, equal to the emulator's own counters.
 *
 * The test stands in for the other worker: when this worker's first request for a page reaches
 * the engine, it records that page's result as the other worker's lock-free settle does, at no
 * cost (so the emulator's counters stay the truth of what the engine processed). Requests go
 * through a scripted proxy to the emulator; it answers the emulator's answer, or a 400.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { openQueue } from '../../queues/connect.ts';
import { unitJobId } from '../../queues/contracts.ts';
import type { InferWorker } from '../../src/infer/worker.ts';
import { runCli } from '../helpers/cli.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { chatText, startScriptedEngine, type ScriptedEngine } from '../helpers/scripted-engine.ts';

let p: Pipeline;
let scripted: ScriptedEngine;
let worker: InferWorker;
let docId = '';
const calls = new Map<number, number>();
beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 20, outputTokensMin: 20, outputTokensMax: 40 }, config: { imageSize: 256, pageMaxTokens: 200 } });
  scripted = await startScriptedEngine(p.engine.url, async (body) => {
    const page = Number(/Page (\d+) of \d+/.exec(chatText(body))?.[1]);
    const n = (calls.get(page) ?? 0) + 1;
    calls.set(page, n);
    if (page >= 2 && n === 1) {
      // The other worker's answer, recorded without a lock while this worker's request runs.
      await p.store.settle(docId, 1, page - 1, { ok: true, text: `Page ${page}, answered by another worker.`, promptTokens: 0, completionTokens: 0, engineMs: 0, latencyMs: 0, model: 'docbatch/emulated-vl', finishReason: 'stop', worker: 'another-worker' });
    }
    // Page 3: its first answer (cut off, like every first answer) rejected, then refused for good.
    if (page === 3 && n === 2) return { status: 400, content: 'refused' };
    // Page 1's answer settles last: the document is not written before pages 2 and 3 have
    // settled here (a spend on a written document is not counted: its report is out).
    if (page === 1 && n === 2) await settled([1, 2]);
    return null;
  });
  worker = await p.startWorker({ engineUrl: scripted.url });
});
/** Waits until this worker is done with the jobs of these units (completed or failed). */
async function settled(units: number[]): Promise<void> {
  const infer = openQueue('infer', p.config, p.redis);
  try {
    for (let i = 0; i < 600; i++) {
      const states = await Promise.all(units.map((u) => infer.getJobState(unitJobId(docId, 1, u))));
      if (states.every((s) => s === 'completed' || s === 'failed')) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`the jobs of units ${units.join(', ')} did not finish`);
  } finally {
    await infer.close();
  }
}
afterAll(async () => {
  await worker?.close({ deadlineMs: 2000 });
  await scripted?.close();
  await p?.stop();
});

it('the answers and the failure of a unit another worker recorded meanwhile are counted in the report and status', async () => {
  // Every first answer cut off at max_tokens: each page is asked twice.
  p.engine.setFaults({ cutoff: 1 });
  const s0 = p.engine.stats();
  const pdf = join(p.dir, 'taken.pdf');
  writeFileSync(pdf, numberedPdf(3, 20));
  docId = acceptedIds(await p.enqueue([pdf]))[0]!;
  const [done] = await p.wait([docId], 90_000);
  // Pages 2 and 3 are the other worker's; page 3's failure here did not replace its answer.
  expect(done!.record).toMatchObject({ state: 'written', done: 3, failed: 0 });
  expect([...calls.entries()].sort(([a], [b]) => a - b)).toEqual([[1, 2], [2, 2], [3, 2]]);
  const pages = parsePages(readFileSync(join(p.config.outDir, 'taken.md'), 'utf8'));
  expect([1, 2, 3].map((n) => pages.get(n)?.body)).toEqual([expect.stringMatching(/^\[emulated reply/), 'Page 2, answered by another worker.', 'Page 3, answered by another worker.']);
  const s = p.engine.stats();
  const spent = { prompt_tokens: s.promptTokens - s0.promptTokens, completion_tokens: s.generationTokens - s0.generationTokens };
  expect(spent.prompt_tokens).toBeGreaterThan(0);
  const report = JSON.parse(readFileSync(join(p.config.outDir, 'taken.report.json'), 'utf8')) as Record<string, unknown>;
  expect(report).toMatchObject({ ...spent, units_without_usage: 0 });
  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix };
  const doc = JSON.parse((await runCli(['status', docId, '--json'], env)).stdout.split('\n')[0]!) as Record<string, unknown>;
  expect(doc).toMatchObject(spent);
}, 120_000);
