/**
 * A unit whose answer finds its document written already: another worker held the unit, lost
 * its lock, and recorded its own answer where no result was (first write wins); the document was
 * written with it while this worker's request for the same unit was still at the engine. This
 * answer is discarded. The GPU time it took was spent, and counted once in the totals of all
 * documents (BUDGET_USD's), not twice; the written document's record, report and `status --json`
 * keep what they said when it was written (the report is out: SPEND_LUA counts nothing in a
 * written record).
 *
 * The test stands in for the other worker: when this worker's request reaches the engine, it
 * records the page's answer as a lock-free settle does, at no cost, and holds the request until
 * the writer's reconciler has written the document.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { openQueue } from '../../queues/connect.ts';
import { unitJobId } from '../../queues/contracts.ts';
import { runCli } from '../helpers/cli.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { startScriptedEngine, type ScriptedEngine } from '../helpers/scripted-engine.ts';

let p: Pipeline;
let scripted: ScriptedEngine;
let docId = '';
/** How long this worker's request was held at the engine (ms). */
let heldMs = 0;

const until = async (what: string, ok: () => Promise<boolean>, ms = 30_000) => {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (await ok()) return;
  throw new Error(`timed out waiting for ${what}`);
};

beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, config: { imageSize: 256 } });
  scripted = await startScriptedEngine(p.engine.url, async () => {
    const started = Date.now();
    await p.store.settle(docId, 1, 0, { ok: true, text: 'Page 1, answered by another worker.', promptTokens: 0, completionTokens: 0, engineMs: 0, latencyMs: 0, model: 'docbatch/emulated-vl', finishReason: 'stop', worker: 'another-worker' });
    await until('the document written', async () => (await p.store.get(docId))?.state === 'written');
    // Held at least 600 ms in all: a writer quicker than that (105 ms in a CI run) left too little
    // engine time for the totals to tell once (~600) from twice (~1200, above the bound below).
    await new Promise((r) => setTimeout(r, Math.max(0, 600 - (Date.now() - started))));
    heldMs = Date.now() - started;
    return { content: 'Page 1, answered by this worker.', usage: { prompt: 300, completion: 30 } };
  });
  await p.startWorker({ engineUrl: scripted.url });
});

afterAll(async () => {
  await p?.stop();
  await scripted?.close();
});

it('an answer that finds its document written counts its engine time once in the totals, and changes nothing written', async () => {
  const pdf = join(p.dir, 'late.pdf');
  writeFileSync(pdf, numberedPdf(1, 20));
  docId = acceptedIds(await p.enqueue([pdf]))[0]!;
  const [done] = await p.wait([docId], 60_000);
  expect(done!.record).toMatchObject({ state: 'written', done: 1, failed: 0, engineMs: 0, promptTokens: 0, completionTokens: 0 });
  const infer = openQueue('infer', p.config, p.redis);
  try {
    await until('the worker done with the unit', async () => ['completed', 'failed'].includes(await infer.getJobState(unitJobId(docId, 1, 0))));
  } finally {
    await infer.close();
  }
  expect(scripted.chats).toHaveLength(1);
  expect(heldMs).toBeGreaterThan(200);
  // This worker's request: spent once (about the time the engine held it), not twice.
  const total = await p.store.spentEngineMs();
  expect(total).toBeGreaterThanOrEqual(heldMs * 0.9);
  expect(total).toBeLessThan(heldMs + 500);
  // The written record, the report and status --json are as written.
  expect(await p.store.get(docId)).toMatchObject({ state: 'written', done: 1, engineMs: 0, promptTokens: 0, completionTokens: 0 });
  const report = JSON.parse(readFileSync(join(p.config.outDir, 'late.report.json'), 'utf8')) as Record<string, unknown>;
  expect(report).toMatchObject({ prompt_tokens: 0, completion_tokens: 0 });
  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix };
  const status = JSON.parse((await runCli(['status', docId, '--json'], env)).stdout.split('\n')[0]!) as Record<string, unknown>;
  expect(status).toMatchObject({ prompt_tokens: 0, completion_tokens: 0 });
  expect(readFileSync(join(p.config.outDir, 'late.md'), 'utf8')).toContain('answered by another worker');
}, 90_000);
