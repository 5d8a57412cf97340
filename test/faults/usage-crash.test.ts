/**
 * A worker killed (SIGKILL) after an answer of a unit was rejected by the checks, while the unit
 * is asked again: the rejected answer's tokens, which the engine reported to that worker, are in
 * the record already, so the report (the unit done by another worker) counts them with the
 * other worker's answer, equal to what the engine processed. A real `docbatch worker` process,
 * the engine emulator, real Redis.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import type { Config } from '../../src/config.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'docbatch');

let p: Pipeline | undefined;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await p?.stop();
  p = undefined;
});

/** A `docbatch worker` in its own process, configured like the pipeline's. */
function spawnWorker(config: Config): { child: ChildProcess; exited: Promise<unknown> } {
  const child = spawn(BIN, ['worker'], {
    env: {
      PATH: process.env.PATH,
      REDIS_URL: config.redisUrl,
      DOCBATCH_PREFIX: config.prefix,
      ENGINE_URL: config.engineUrl,
      BLOB_DIR: config.blobDir,
      RENDERERS: '1',
      IMAGE_SIZE: String(config.imageSize),
      PAGE_MAX_TOKENS: String(config.pageMaxTokens),
      LOCK_DURATION_MS: String(config.lockDurationMs),
      STALLED_INTERVAL_MS: String(config.stalledIntervalMs),
      LOG_LEVEL: 'warn',
    },
    stdio: 'ignore',
  });
  children.push(child);
  return { child, exited: new Promise((resolve) => child.once('exit', resolve)) };
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

it('the tokens of an answer rejected by a worker killed before its unit settled are counted', async () => {
  p = await startPipeline({
    file: import.meta.filename,
    worker: false,
    emulator: { speed: 20, outputTokensMin: 20, outputTokensMax: 40 },
    config: { imageSize: 256, pageMaxTokens: 200, lockDurationMs: 3000, stalledIntervalMs: 1000 },
  });
  const engine = p.engine;
  // Every first answer is cut off at max_tokens (rejected: the page is asked again); the third
  // request (after the worker's start-up probe and the page's first ask) never answers.
  engine.setFaults({ cutoff: 1, hang: { every: 3 } });
  const victim = spawnWorker(p.config);
  await until('the worker\u2019s start-up probe', () => engine.stats().completed >= 1);
  const s0 = engine.stats();
  const pdf = join(p.dir, 'killed.pdf');
  writeFileSync(pdf, numberedPdf(1, 9));
  const [docId] = acceptedIds(await p.enqueue([pdf]));
  await until('the page asked again after its cut-off answer', () => engine.stats().hung >= 1);
  expect(engine.stats().completed - s0.completed).toBe(1);
  victim.child.kill('SIGKILL');
  await victim.exited;
  engine.setFaults({ hang: null });
  // The next worker's probe is no document's either.
  const b0 = engine.stats();
  await p.startWorker();
  const b1 = engine.stats();
  const [done] = await p.wait([docId!], 60_000);
  expect(done!.record).toMatchObject({ state: 'written', done: 1, failed: 0 });
  const end = engine.stats();
  const spent = {
    prompt_tokens: end.promptTokens - s0.promptTokens - (b1.promptTokens - b0.promptTokens),
    completion_tokens: end.generationTokens - s0.generationTokens - (b1.generationTokens - b0.generationTokens),
  };
  // The cut-off answer (200 tokens) and the other worker's answer.
  expect(spent.completion_tokens).toBeGreaterThan(200);
  const report = JSON.parse(readFileSync(join(p.config.outDir, 'killed.report.json'), 'utf8')) as Record<string, unknown>;
  expect(report).toMatchObject(spent);
}, 120_000);
