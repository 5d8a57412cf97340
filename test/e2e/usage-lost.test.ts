/**
 * Tokens the engine processed for a unit on paths where its attempt ends without the answer it
 * was after: the report, `status --json` and the worker's /metrics token counters still count
 * them, equal to the emulator's own counters (vllm:prompt_tokens_total,
 * vllm:generation_tokens_total).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { WorkerMetrics } from '../../src/observe/metrics.ts';
import { runCli } from '../helpers/cli.ts';
import { parseMetrics, sumOf } from '../observe/fixtures.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline;
let metrics: WorkerMetrics;
beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, emulator: { speed: 20, outputTokensMin: 20, outputTokensMax: 40 }, config: { imageSize: 256 } });
  metrics = new WorkerMetrics({ labels: { worker: 'usage-lost' } });
  metrics.attach(p.worker!);
});
afterAll(async () => {
  await p?.stop();
});

const report = (name: string) => JSON.parse(readFileSync(join(p.config.outDir, `${name}.report.json`), 'utf8')) as Record<string, unknown>;
const env = () => ({ REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix });
/** The worker's token counters (docbatch_prompt_tokens_total, docbatch_completion_tokens_total) now. */
const counted = async () => {
  const m = parseMetrics(await metrics.registry.metrics());
  return { prompt_tokens: sumOf(m, 'docbatch_prompt_tokens_total'), completion_tokens: sumOf(m, 'docbatch_completion_tokens_total') };
};
/** What the engine processed since `s0` (a stats snapshot). */
const since = (s0: { promptTokens: number; generationTokens: number }) => {
  const s = p.engine.stats();
  return { prompt_tokens: s.promptTokens - s0.promptTokens, completion_tokens: s.generationTokens - s0.generationTokens };
};

it('an endpoint that ignores response_format, then refuses the request sent again with the schema in the prompt: the prose answers sent again still count', async () => {
  // Answers prose to a JSON task; once the client has seen 3 in a row it sends the request again
  // with the schema in the prompt, which this endpoint refuses (400): every unit fails for good.
  p.engine.setFaults({ structuredOutputs: 'ignored', reject: { matchText: ['valid against this JSON Schema'] } });
  try {
    const schemaFile = join(p.dir, 'total.schema.json');
    writeFileSync(schemaFile, JSON.stringify({ type: 'object', properties: { total: { type: 'number' } }, required: ['total'] }));
    const file = join(p.dir, 'refused-resend.pdf');
    writeFileSync(file, numberedPdf(4, 14));
    const s0 = p.engine.stats();
    const m0 = await counted();
    const [docId] = acceptedIds(await p.enqueue([file], { task: { schema: schemaFile, unit: 'page' } }));
    const [done] = await p.wait([docId!], 60_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 0, failed: 4 });
    const r = report('refused-resend');
    // Only requests with the schema in the prompt are refused: the prose answers were sent again.
    expect(r.failures_by_code).toEqual({ BAD_REQUEST: 4 });
    const spent = since(s0);
    expect(spent.prompt_tokens).toBeGreaterThan(0);
    expect(r).toMatchObject({ ...spent, units_without_usage: 0 });
    const doc = JSON.parse((await runCli(['status', docId!, '--json'], env())).stdout.split('\n')[0]!) as Record<string, unknown>;
    expect(doc).toMatchObject(spent);
    // The worker's /metrics count every answer too (failed units' included).
    const m = await counted();
    expect({ prompt_tokens: m.prompt_tokens - m0.prompt_tokens, completion_tokens: m.completion_tokens - m0.completion_tokens }).toEqual(spent);
  } finally {
    p.engine.setFaults({ structuredOutputs: 'full', reject: null });
  }
}, 90_000);
