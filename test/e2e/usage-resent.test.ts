/**
 * Tokens and engine time of answers a unit got before an attempt of it failed and was tried
 * again (an answer rejected by the checks, then the engine failing with a 5xx, then the unit
 * sent again by BullMQ; or the engine then refusing it with a 400, which fails it for good) are
 * spent: the report and `status --json` count them, as the engine reported them, and the
 * rejected answer's code is in the report's `retries`. A scripted engine answers, through a
 * real worker and writer.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import type { InferWorker } from '../../src/infer/worker.ts';
import { runCli } from '../helpers/cli.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { chatText, startScriptedEngine, type ScriptedAnswer, type ScriptedEngine } from '../helpers/scripted-engine.ts';

const PAGES = 3;

describe('a unit whose attempt failed after some answers', () => {
  let p: Pipeline;
  let scripted: ScriptedEngine;
  let worker: InferWorker;
  /** What the engine reported, over every answer it gave (errors report nothing). */
  const reported = { prompt: 0, completion: 0 };
  const calls = new Map<number, number>();
  beforeAll(async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, config: { imageSize: 256 } });
    scripted = await startScriptedEngine(p.engine.url, (body) => {
      const page = Number(/Page (\d+) of \d+/.exec(chatText(body))?.[1]);
      const n = (calls.get(page) ?? 0) + 1;
      calls.set(page, n);
      const answer: ScriptedAnswer =
        n === 1
          ? { content: 'Cut off in the midd', finishReason: 'length', usage: { prompt: 1000, completion: 300 } }
          : n === 2
            ? { status: page === PAGES ? 400 : 500, content: page === PAGES ? 'refused' : 'internal error' }
            : { content: `The text of page ${page}.`, usage: { prompt: 1000, completion: 20 } };
      if (answer.usage) {
        reported.prompt += answer.usage.prompt;
        reported.completion += answer.usage.completion;
      }
      return answer;
    });
    worker = await p.startWorker({ engineUrl: scripted.url });
  });
  afterAll(async () => {
    await worker?.close({ deadlineMs: 2000 });
    await scripted?.close();
    await p?.stop();
  });

  it('has its spent tokens counted in the report and in status', async () => {
    const pdf = join(p.dir, 'resent.pdf');
    writeFileSync(pdf, numberedPdf(PAGES, 20));
    const [docId] = acceptedIds(await p.enqueue([pdf]));
    const [done] = await p.wait([docId!], 90_000);
    // The last page: cut off, then refused for good; the others cut off, a 5xx, then answered.
    expect(done!.record).toMatchObject({ state: 'written', done: PAGES - 1, failed: 1 });
    expect([...calls.entries()].sort(([a], [b]) => a - b)).toEqual([...Array.from({ length: PAGES - 1 }, (_, i) => [i + 1, 3]), [PAGES, 2]]);
    expect(reported).toEqual({ prompt: (PAGES - 1) * 2000 + 1000, completion: (PAGES - 1) * 320 + 300 });
    const report = JSON.parse(readFileSync(join(p.config.outDir, 'resent.report.json'), 'utf8')) as Record<string, unknown>;
    expect(report).toMatchObject({ prompt_tokens: reported.prompt, completion_tokens: reported.completion, units_without_usage: 0 });
    expect(report.failures_by_code).toEqual({ BAD_REQUEST: 1 });
    // Every page was drawn, the failed one too.
    expect(report.renderers).toEqual({ pdfium: PAGES });
    expect((report.retries as Record<string, number>).OUTPUT_TRUNCATED).toBeGreaterThanOrEqual(1);
    const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix };
    const doc = JSON.parse((await runCli(['status', docId!, '--json'], env)).stdout.split('\n')[0]!) as Record<string, unknown>;
    expect(doc).toMatchObject({ prompt_tokens: reported.prompt, completion_tokens: reported.completion });
  }, 120_000);
});
