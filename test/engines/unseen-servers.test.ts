/**
 * A real worker and writer before the engine emulator acting out servers docbatch had not met:
 * a proxy that forces streaming (every answer an event stream), a gateway that sends its errors
 * with status 200, a content filter (Azure OpenAI), and an endpoint that ignores response_format. Pages are written, tokens counted, and a refusal in a 200 is the
 * BAD_REQUEST it carries (one request, the unit failed for good), not an ENGINE_ERROR retried
 * on every attempt.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline;
beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, emulator: { speed: 20, outputTokensMin: 20, outputTokensMax: 40 } });
});
afterAll(async () => {
  await p?.stop();
});

const report = (name: string) => JSON.parse(readFileSync(join(p.config.outDir, `${name}.report.json`), 'utf8')) as Record<string, unknown>;

it('a proxy that forces streaming: every page written from the assembled streams, their tokens counted', async () => {
  p.engine.setFaults({ forceStream: true });
  try {
    const file = join(p.dir, 'streamed.pdf');
    writeFileSync(file, numberedPdf(3, 11));
    const [docId] = acceptedIds(await p.enqueue([file]));
    const [done] = await p.wait([docId!], 60_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 3, failed: 0 });
    const pages = parsePages(readFileSync(join(p.config.outDir, 'streamed.md'), 'utf8'));
    for (const n of [1, 2, 3]) expect(pages.get(n)!.body).toMatch(/^\[emulated reply by /);
    expect(report('streamed')).toMatchObject({ completed: 3, failed: [] });
    expect(report('streamed').completion_tokens).toBeGreaterThanOrEqual(60);
  } finally {
    p.engine.setFaults({ forceStream: false });
  }
}, 90_000);

it('a gateway that sends errors with a 200: a refused page is BAD_REQUEST after one request, the others written', async () => {
  p.engine.setFaults({ errorsAs200: true, reject: { matchText: 'Page 2 of 3' } });
  try {
    const file = join(p.dir, 'refused200.pdf');
    writeFileSync(file, numberedPdf(3, 12));
    const before = p.engine.stats().errors.rejected;
    const [docId] = acceptedIds(await p.enqueue([file]));
    const [done] = await p.wait([docId!], 60_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 2, failed: 1 });
    expect(report('refused200')).toMatchObject({ failed: [{ page: 2, code: 'BAD_REQUEST', message: expect.stringMatching(/its text contains "Page 2 of 3".*sent as an error body with HTTP 200/) }] });
    // Sent once: a BAD_REQUEST is final, where an ENGINE_ERROR was retried on every attempt.
    expect(p.engine.stats().errors.rejected - before).toBe(1);
  } finally {
    p.engine.setFaults({ errorsAs200: false, reject: null });
  }
}, 90_000);

it("an endpoint's content filter (Azure OpenAI: a 200 without choices): the page fails at once as CONTENT_FILTERED naming the category, the others written", async () => {
  p.engine.setFaults({ contentFilter: { matchText: 'Page 2 of 3', on: 'prompt' } });
  try {
    const file = join(p.dir, 'filtered.pdf');
    writeFileSync(file, numberedPdf(3, 13));
    const before = p.engine.stats().filtered;
    const [docId] = acceptedIds(await p.enqueue([file]));
    const [done] = await p.wait([docId!], 60_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 2, failed: 1 });
    expect(report('filtered')).toMatchObject({ failed: [{ page: 2, code: 'CONTENT_FILTERED', message: expect.stringMatching(/content filter withheld the answer.*sexual \(medium\)/) }] });
    // Sent once: not an ENGINE_ERROR retried on every attempt, nor an empty answer asked again.
    expect(p.engine.stats().filtered - before).toBe(1);
  } finally {
    p.engine.setFaults({ contentFilter: null });
  }
}, 90_000);

it("a content-filtered answer's tokens, as the endpoint reported them, are counted", async () => {
  // Azure OpenAI bills the prompt of a filtered request and says so in the 200's usage; the
  // emulator's filter answers before its engine, so the engine's counters do not hold them.
  p.engine.setFaults({ contentFilter: { matchText: 'Page 1 of 1', on: 'prompt' } });
  try {
    const file = join(p.dir, 'filtered-usage.pdf');
    writeFileSync(file, numberedPdf(1, 15));
    const [docId] = acceptedIds(await p.enqueue([file]));
    const [done] = await p.wait([docId!], 60_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 0, failed: 1 });
    expect(report('filtered-usage')).toMatchObject({ failed: [{ page: 1, code: 'CONTENT_FILTERED' }] });
    expect(report('filtered-usage').prompt_tokens).toBeGreaterThan(0);
  } finally {
    p.engine.setFaults({ contentFilter: null });
  }
}, 90_000);

it('an endpoint that ignores response_format (answers prose to a JSON task): found by its answers, the schema put in the prompt, every page answered without SCHEMA_IN_PROMPT', async () => {
  p.engine.setFaults({ structuredOutputs: 'ignored' });
  try {
    const schemaFile = join(p.dir, 'total.schema.json');
    writeFileSync(schemaFile, JSON.stringify({ type: 'object', properties: { total: { type: 'number' } }, required: ['total'] }));
    const file = join(p.dir, 'ignored.pdf');
    writeFileSync(file, numberedPdf(4, 14));
    const s0 = p.engine.stats();
    const [docId] = acceptedIds(await p.enqueue([file], { task: { schema: schemaFile, unit: 'page' } }));
    const [done] = await p.wait([docId!], 60_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 4, failed: 0 });
    const lines = readFileSync(join(p.config.outDir, 'ignored.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { data?: { total?: unknown } });
    expect(lines.map((l) => typeof l.data?.total)).toEqual(['number', 'number', 'number', 'number']);
    // The prose answers the client sent again with the schema in the prompt were processed by
    // the engine all the same: the report counts their tokens too.
    const s = p.engine.stats();
    expect(report('ignored')).toMatchObject({ prompt_tokens: s.promptTokens - s0.promptTokens, completion_tokens: s.generationTokens - s0.generationTokens });
  } finally {
    p.engine.setFaults({ structuredOutputs: 'full' });
  }
}, 90_000);
