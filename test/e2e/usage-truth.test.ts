/**
 * The token figures users read (X.report.json, `docbatch status --json`) against what the engine
 * actually processed (the emulator's own counters): answers rejected by the checks and asked
 * again, pages the engine refused, then `docbatch retry` of those pages. Nothing counted twice,
 * nothing lost.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { runCli } from '../helpers/cli.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

const report = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as { prompt_tokens: number; completion_tokens: number; retries: Record<string, number>; completed: number };

it('report and status tokens equal what the engine processed, across rejected answers and a retry', async () => {
  p = await startPipeline({ file: import.meta.filename, config: { imageSize: 256, pageMaxTokens: 200 } });
  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, LOG_FORMAT: 'json' };
  p.engine.setFaults({ cutoff: 0.2, loop: 0.1, reject: { matchText: ['Page 4 of 24', 'Page 9 of 24'] } });
  // The worker's start-up probe of the engine is no document's.
  const s0 = p.engine.stats();
  const spent = () => { const s = p!.engine.stats(); return { promptTokens: s.promptTokens - s0.promptTokens, generationTokens: s.generationTokens - s0.generationTokens, flaws: s.flaws }; };
  const file = join(p.dir, 'truth.pdf');
  writeFileSync(file, numberedPdf(24, 30));
  const [docId] = acceptedIds(await p.enqueue([file]));
  const [first] = await p.wait([docId!], 120_000);
  expect(first!.record).toMatchObject({ state: 'written', done: 22, failed: 2 });
  // The writer's heartbeat (status --json's writers) counts it at once, not at its next beat.
  // (Within 500 ms: it is written right after the mark that ended the wait; beats are 5 s apart.)
  const written = async () => (await p!.redis.hvals(`${p!.config.prefix}:writers`)).map((b) => (JSON.parse(b) as { written: number }).written);
  for (let i = 0; i < 10 && (await written())[0] !== 1; i++) await new Promise((r) => setTimeout(r, 50));
  expect(await written()).toEqual([1]);
  let r = report(join(p.config.outDir, 'truth.report.json'));
  let s = spent();
  expect(r.prompt_tokens).toBe(s.promptTokens);
  expect(r.completion_tokens).toBe(s.generationTokens);

  p.engine.setFaults({ reject: null });
  const retried = await runCli(['retry', file, '--wait'], env, { timeoutMs: 120_000 });
  expect(retried.code).toBe(0);
  r = report(join(p.config.outDir, 'truth.report.json'));
  s = spent();
  expect(r.completed).toBe(24);
  expect(r.prompt_tokens).toBe(s.promptTokens);
  expect(r.completion_tokens).toBe(s.generationTokens);
  const status = (await runCli(['status', '--json'], env)).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const total = status.find((l) => 'total' in l)!.total as Record<string, unknown>;
  expect(total).toMatchObject({ prompt_tokens: s.promptTokens, completion_tokens: s.generationTokens });
}, 240_000);
