/**
 * A JSON answer cut off at max_tokens (finish_reason "length", its JSON unfinished) is cut off
 * alike when asked again with the same max_tokens, whatever the temperature. So the next try asks
 * with twice as many, within what the model leaves it (the room in its context, the output cap
 * the endpoint named); at that limit the unit fails at once with OUTPUT_TRUNCATED saying why and
 * what would change it, and when its tries run out while rising, which setting to raise.
 *
 * A real worker and writer before a scripted engine (in front of the emulator) whose JSON
 * answers need 100 tokens; the limits' arithmetic is pure.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { maxTokensLimit, raisedMaxTokens } from '../../src/infer/context-room.ts';
import type { Prepared } from '../../src/infer/units.ts';
import type { InferWorker } from '../../src/infer/worker.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { startScriptedEngine, type ChatBody, type ScriptedAnswer, type ScriptedEngine } from '../helpers/scripted-engine.ts';

const schema = { type: 'object', properties: { total: { type: 'number' }, note: { type: 'string' } }, required: ['total', 'note'] };

/** A model whose JSON answer takes 100 tokens: cut off inside its last string below that. */
function needs100(body: ChatBody): ScriptedAnswer {
  const asked = Number(body.max_tokens ?? body.max_completion_tokens);
  if (asked >= 100) return { content: '{"total": 12.5, "note": "the total of the invoice"}', usage: { prompt: 100, completion: 100 } };
  return { content: '{"total": 12.5, "note": "the total of the', finishReason: 'length', usage: { prompt: 100, completion: asked } };
}

describe('a JSON answer cut off at max_tokens', () => {
  let p: Pipeline;
  let scripted: ScriptedEngine | null = null;
  let worker: InferWorker | null = null;
  beforeAll(async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, config: { imageSize: 256 } });
  });
  afterAll(async () => {
    await worker?.close({ deadlineMs: 2000 });
    await scripted?.close();
    await p?.stop();
  });
  const report = (name: string) => JSON.parse(readFileSync(join(p.config.outDir, `${name}.report.json`), 'utf8')) as Record<string, unknown>;

  async function scriptedWorker(script: (body: ChatBody) => ScriptedAnswer): Promise<ScriptedEngine> {
    await worker?.close({ deadlineMs: 2000 });
    await scripted?.close();
    scripted = await startScriptedEngine(p.engine.url, script);
    worker = await p.startWorker({ engineUrl: scripted.url });
    return scripted;
  }

  async function run(name: string, maxTokens: number, retries: number): Promise<void> {
    const task = join(p.dir, `${name}.yaml`);
    writeFileSync(task, `name: ${name}\nunit: document\nprompt: The total.\noutput: { schema: ${JSON.stringify(schema)} }\nsampling: { max_tokens: ${maxTokens} }\nretries: ${retries}\n`);
    const file = join(p.dir, `${name}.pdf`);
    writeFileSync(file, numberedPdf(1, name.length));
    const [docId] = acceptedIds(await p.enqueue([file], { task: { task } }));
    await p.wait([docId!], 60_000);
  }

  it('is asked again with twice the max_tokens until the answer fits', async () => {
    const engine = await scriptedWorker(needs100);
    await run('raised', 30, 3);
    expect(engine.chats.map((c) => c.max_tokens)).toEqual([30, 60, 120]);
    expect(JSON.parse(readFileSync(join(p.config.outDir, 'raised.json'), 'utf8'))).toEqual({ total: 12.5, note: 'the total of the invoice' });
    expect(report('raised')).toMatchObject({ completed: 1, failed: [], retries: { OUTPUT_TRUNCATED: 2 } });
  }, 90_000);

  it('its tries run out while rising: OUTPUT_TRUNCATED names the setting to raise', async () => {
    const engine = await scriptedWorker(needs100);
    await run('short', 20, 1);
    expect(engine.chats.map((c) => c.max_tokens)).toEqual([20, 40]);
    expect(report('short')).toMatchObject({ failed: [{ code: 'OUTPUT_TRUNCATED', message: expect.stringMatching(/still cut off at max_tokens 40 \(20 at first.*raise the task's sampling\.max_tokens/) }] });
  }, 90_000);

  it("at the model's output cap (learnt from the endpoint): not asked again, OUTPUT_TRUNCATED says so", async () => {
    const engine = await scriptedWorker((body) => {
      const asked = Number(body.max_tokens);
      if (asked > 50) return { status: 400, content: `max_tokens is too large: ${asked}. This model supports at most 50 completion tokens, whereas you provided ${asked}.` };
      return needs100(body);
    });
    await run('capped', 200, 3);
    // Refused at 200, asked within the cap, cut off there: no try more at 50.
    expect(engine.chats.map((c) => c.max_tokens)).toEqual([200, 50]);
    expect(report('capped')).toMatchObject({ failed: [{ code: 'OUTPUT_TRUNCATED', message: expect.stringMatching(/max_tokens 50 is the most the endpoint lets .* answer \(it caps replies at 50 tokens\)/) }] });
  }, 90_000);
});

describe("the limit of a unit's max_tokens", () => {
  const unit = { maxTokens: 1000, promptTokensEstimate: 2000 } as Prepared;
  it("is the room the context leaves the prompt, or the output cap, whichever is lower; unknown without either", () => {
    expect(maxTokensLimit(unit, 4096, null, null)).toEqual({ tokens: 4096 - 2000 - 64, by: 'context' });
    expect(maxTokensLimit(unit, 4096, 1500, null)).toEqual({ tokens: 1500, by: 'context' });
    expect(maxTokensLimit(unit, 4096, null, 1024)).toEqual({ tokens: 1024, by: 'cap' });
    expect(maxTokensLimit(unit, null, null, null)).toBeNull();
  });
  it('a cut-off answer is asked again with twice the max_tokens, at most the limit; at the limit, not again', () => {
    expect(raisedMaxTokens(400, null)).toBe(800);
    expect(raisedMaxTokens(400, { tokens: 600, by: 'context' })).toBe(600);
    expect(raisedMaxTokens(600, { tokens: 600, by: 'context' })).toBeNull();
  });
});
