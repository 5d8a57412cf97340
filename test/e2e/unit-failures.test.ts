/**
 * What becomes of a unit whose answers fail the checks, through a real worker and writer:
 *
 * - every answer empty: the unit is asked its task's retries + 1 times at rising temperature,
 *   then fails with EMPTY_OUTPUT for good (not once more per job attempt);
 * - a transcription whose every answer is cut off falls back to the page's text layer, marked in
 *   X.md and the report; an image page, having no text layer, fails with OUTPUT_TRUNCATED; what
 *   the rejected answers cost counts in the report either way;
 * - a task's max_tokens is sent as it is, even below 64 (a one-word classification);
 * - SCHEMA_IN_PROMPT (an engine without structured output): no response_format, the schema in
 *   the prompt, and the answer still validated against it; without it, such an engine's refusal
 *   of response_format is met by asking again at once without it (structured-fallback.ts), and
 *   a schema its grammar compiler refuses fails the unit with BAD_REQUEST and a message that
 *   says so.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import type { InferWorker } from '../../src/infer/worker.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { chatText, startScriptedEngine, type ScriptedEngine } from '../helpers/scripted-engine.ts';

const report = (p: Pipeline, name: string) => JSON.parse(readFileSync(join(p.config.outDir, `${name}.report.json`), 'utf8')) as Record<string, unknown>;

describe('units whose answers fail the checks', () => {
  let p: Pipeline;
  let scripted: ScriptedEngine | null = null;
  let worker: InferWorker | null = null;
  let png: string;
  beforeAll(async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, config: { imageSize: 256 } });
    png = join(p.dir, 'scan.png');
    await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 90, g: 160, b: 30 } } }).png().toFile(png);
  });
  afterAll(async () => {
    await worker?.close({ deadlineMs: 2000 });
    await scripted?.close();
    await p?.stop();
  });

  /** A worker in front of a scripted engine (the previous one stopped first). */
  async function scriptedWorker(script: Parameters<typeof startScriptedEngine>[1], overrides: Parameters<Pipeline['startWorker']>[0] = {}): Promise<ScriptedEngine> {
    await worker?.close({ deadlineMs: 2000 });
    await scripted?.close();
    scripted = await startScriptedEngine(p.engine.url, script);
    worker = await p.startWorker({ engineUrl: scripted.url, ...overrides });
    return scripted;
  }

  it('every answer empty: retries + 1 requests at rising temperature, then EMPTY_OUTPUT for good', async () => {
    const engine = await scriptedWorker(() => ({ content: '' }));
    const [docId] = acceptedIds(await p.enqueue([png]));
    const [done] = await p.wait([docId!], 90_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 0, failed: 1 });
    // The transcribe task's 3 retries: 4 requests, not 4 per job attempt (ATTEMPTS is 5).
    expect(engine.chats.map((c) => c.temperature)).toEqual([0, 0.3, 0.5, 0.7]);
    expect(report(p, 'scan')).toMatchObject({
      completed: 0,
      failed: [{ unit: 0, page: 1, code: 'EMPTY_OUTPUT', message: expect.stringContaining('(4 tries)') }],
      failures_by_code: { EMPTY_OUTPUT: 1 },
      retries: { EMPTY_OUTPUT: 4 },
    });
  }, 120_000);

  it("a task's max_tokens is sent as it is, even below 64", async () => {
    const engine = await scriptedWorker((body) => ({ content: chatText(body).includes('Page 1 of 1') ? 'letter' : 'form', usage: { prompt: 50, completion: 1 } }));
    const task = join(p.dir, 'classify.yaml');
    writeFileSync(task, 'name: classify\nprompt: "One word: what kind of page is this (letter, form, invoice)?"\nsampling: { max_tokens: 5 }\nimage: { size: 128 }\n');
    const file = join(p.dir, 'kinds.pdf');
    writeFileSync(file, numberedPdf(1, 5));
    const [docId] = acceptedIds(await p.enqueue([file], { task: { task } }));
    await p.wait([docId!], 60_000);
    expect(engine.chats.map((c) => c.max_tokens)).toEqual([5]);
    expect(parsePages(readFileSync(join(p.config.outDir, 'kinds.md'), 'utf8')).get(1)!.body).toBe('letter');
  }, 90_000);

  it('SCHEMA_IN_PROMPT: no response_format, the schema in the prompt, the answer validated against it', async () => {
    const schema = { type: 'object', properties: { total: { type: 'number' } }, required: ['total'], additionalProperties: false };
    let answered = 0;
    const engine = await scriptedWorker(
      (body) => {
        if (body.response_format !== undefined) return { status: 400, content: "Unknown parameter: 'response_format'" };
        // First a string where the schema wants a number (rejected), then the number.
        return { content: answered++ === 0 ? '{"total": "12.50"}' : '```json\n{"total": 12.5}\n```' };
      },
      { schemaInPrompt: true },
    );
    const schemaFile = join(p.dir, 'total.json');
    writeFileSync(schemaFile, JSON.stringify(schema));
    const file = join(p.dir, 'bill.pdf');
    writeFileSync(file, numberedPdf(1, 5));
    const [docId] = acceptedIds(await p.enqueue([file], { task: { schema: schemaFile, prompt: 'The total.', unit: 'document' } }));
    await p.wait([docId!], 60_000);
    expect(engine.chats).toHaveLength(2);
    for (const chat of engine.chats) {
      expect(chat.response_format).toBeUndefined();
      // The schema as the user wrote it, properties in their order.
      expect(chatText(chat)).toContain(`valid against this JSON Schema:\n${JSON.stringify(schema)}`);
    }
    expect(JSON.parse(readFileSync(join(p.config.outDir, 'bill.json'), 'utf8'))).toEqual({ total: 12.5 });
    expect(report(p, 'bill')).toMatchObject({ completed: 1, retries: { OUTPUT_INVALID: 1 } });
  }, 90_000);

  it('an engine that refuses response_format: asked again at once without it, the schema in the prompt, the answer validated; no attempt used', async () => {
    const schema = { type: 'object', properties: { total: { type: 'number' } }, required: ['total'] };
    const engine = await scriptedWorker((body) => (body.response_format !== undefined ? { status: 400, content: "Unknown parameter: 'response_format'" } : { content: '{"total": 7}' }));
    const schemaFile = join(p.dir, 'total2.json');
    writeFileSync(schemaFile, JSON.stringify(schema));
    const files = [join(p.dir, 'refused.pdf'), join(p.dir, 'refused2.pdf')];
    writeFileSync(files[0]!, numberedPdf(1, 7));
    writeFileSync(files[1]!, numberedPdf(1, 8));
    const [first] = acceptedIds(await p.enqueue([files[0]!], { task: { schema: schemaFile, unit: 'document' } }));
    await p.wait([first!], 60_000);
    expect(JSON.parse(readFileSync(join(p.config.outDir, 'refused.json'), 'utf8'))).toEqual({ total: 7 });
    expect(report(p, 'refused')).toMatchObject({ completed: 1, failed: [] });
    // vLLM's older guided_json (ignored by servers that dropped it: the schema goes into the prompt too).
    expect(engine.chats).toHaveLength(2);
    expect(engine.chats[1]!.guided_json).toEqual(schema);
    expect(chatText(engine.chats[1]!)).toContain(`valid against this JSON Schema:\n${JSON.stringify(schema)}`);
    // Remembered for the model: the next unit goes the way it takes at once.
    const [second] = acceptedIds(await p.enqueue([files[1]!], { task: { schema: schemaFile, unit: 'document' } }));
    await p.wait([second!], 60_000);
    expect(engine.chats).toHaveLength(3);
    expect(engine.chats[2]!.response_format).toBeUndefined();
  }, 90_000);

  it('an engine that cannot take the schema (its grammar compiler refuses it): the unit fails with BAD_REQUEST and says what to do', async () => {
    await scriptedWorker((body) => (body.response_format !== undefined ? { status: 400, content: 'Failed to transform json schema into a grammar: unsupported keyword patternProperties' } : { content: '{}' }));
    const schemaFile = join(p.dir, 'total3.json');
    writeFileSync(schemaFile, JSON.stringify({ type: 'object', properties: { total: { type: 'number' } } }));
    const file = join(p.dir, 'ungrammatical.pdf');
    writeFileSync(file, numberedPdf(1, 9));
    const [docId] = acceptedIds(await p.enqueue([file], { task: { schema: schemaFile, unit: 'document' } }));
    await p.wait([docId!], 60_000);
    expect(report(p, 'ungrammatical')).toMatchObject({
      failed: [{ code: 'BAD_REQUEST', message: expect.stringMatching(/Failed to transform json schema.*start its worker with SCHEMA_IN_PROMPT=1/) }],
    });
  }, 90_000);

  it('every answer cut off: PDF pages fall back to their text layer, marked; an image page fails', async () => {
    await worker?.close({ deadlineMs: 2000 });
    worker = await p.startWorker();
    // Replies of 200+ tokens against a task's max_tokens of 40: every answer is cut off.
    p.engine.setTiming({ outputTokensMin: 200, outputTokensMax: 300 });
    const task = join(p.dir, 'short.yaml');
    writeFileSync(task, 'extends: transcribe\nsampling: { max_tokens: 40 }\nretries: 1\n');
    const pdf = join(p.dir, 'layered.pdf');
    writeFileSync(pdf, numberedPdf(2, 10));
    const image = join(p.dir, 'photo.png');
    await sharp({ create: { width: 200, height: 300, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png().toFile(image);
    const ids = acceptedIds(await p.enqueue([pdf, image], { task: { task } }));
    await p.wait(ids, 90_000);
    p.engine.setTiming({ outputTokensMin: 20, outputTokensMax: 60 });

    const pages = parsePages(readFileSync(join(p.config.outDir, 'layered.md'), 'utf8'));
    for (const n of [1, 2]) {
      expect(pages.get(n)!.failed).toBeNull();
      expect(pages.get(n)!.body).toMatch(new RegExp(`^<!-- page ${n} fallback: text layer \\(every answer was rejected: OUTPUT_TRUNCATED, OUTPUT_TRUNCATED\\) -->\\nPage ${n} of 2\\n`));
    }
    expect(report(p, 'layered')).toMatchObject({ completed: 2, failed: [], fallbacks: { count: 2, units: [0, 1] }, retries: { OUTPUT_TRUNCATED: 4 }, completion_tokens: 160 });
    expect(report(p, 'photo')).toMatchObject({
      completed: 0,
      failed: [{ page: 1, code: 'OUTPUT_TRUNCATED' }],
      fallbacks: { count: 0 },
      retries: { OUTPUT_TRUNCATED: 2 },
      completion_tokens: 80,
    });
  }, 120_000);
});
