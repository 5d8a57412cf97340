/**
 * What OpenAI-compatible servers do that vLLM with its defaults does not, met over real
 * HTTP (a node:http server on port 0):
 *
 * - a reasoning model served without a reasoning parser (vLLM or SGLang without
 *   --reasoning-parser, llama.cpp with --reasoning-format none, TGI) writes its thinking into
 *   `content`, `<think>...</think>` first (or only `...</think>` when the chat template opened the
 *   block in the prompt; Magistral's `[THINK]...[/THINK]`): the answer is what follows it, the
 *   thinking is reasoning, as vLLM's parser would have split it;
 * - OpenAI (and Azure, and gateways in front of them) refuse a `strict: true` json_schema whose
 *   schema is not in their strict subset ("Invalid schema for response_format 'x': In
 *   context=(), 'additionalProperties' is required to be supplied and to be false."): the request
 *   goes again at once without `strict` (the schema is still sent; answers are validated
 *   against it), remembered for the model, said once;
 * - OpenAI and Groq refuse json_object when the messages never say JSON: the instruction to answer
 *   with one JSON object is added, json_object kept.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EngineClient, EngineError, type ChatRequest } from '../../src/engine/client.ts';
import { completion, json, startScripted, type Scripted } from './scripted-server.ts';

let server: Scripted | undefined;
let client: EngineClient | undefined;
afterEach(async () => {
  await client?.destroy();
  await server?.close();
  server = client = undefined;
});

const text: ChatRequest = { messages: [{ role: 'user', content: 'Transcribe the page.' }], maxTokens: 200, temperature: 0 };

/** A server whose every chat answer has `content` (and `finish_reason`) as given. */
async function answering(content: string, finishReason = 'stop'): Promise<EngineClient> {
  server = await startScripted((_req, res) => json(res, 200, { ...completion(''), choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finishReason }] }));
  return (client = new EngineClient({ url: server.url, model: 'm' }));
}

describe('a reasoning model served without a reasoning parser (its thinking inline in content)', () => {
  it('<think>...</think> before the answer: the answer is what follows', async () => {
    const result = await (await answering('<think>\nThe page shows a title.\n</think>\n\n# Title\n\nBody.')).chat(text);
    expect(result.text).toBe('# Title\n\nBody.');
    expect(result.reasoningChars).toBe('The page shows a title.'.length);
  });

  it('only ...</think> (the chat template opened the block in the prompt): the answer is what follows', async () => {
    const result = await (await answering('Okay, the total is 12.5.\n</think>\n\n{"total": 12.5}')).chat(text);
    expect(result.text).toBe('{"total": 12.5}');
  });

  it("Magistral's [THINK]...[/THINK]", async () => {
    const result = await (await answering('[THINK]Let me look.[/THINK]The answer.')).chat(text);
    expect(result.text).toBe('The answer.');
  });

  it('thinking cut off at max_tokens (never closed): no answer, EMPTY_OUTPUT saying the reasoning took the room', async () => {
    const err = (await (await answering('<think>\nThe page shows', 'length')).chat(text).catch((e: unknown) => e)) as EngineError;
    expect(err).toBeInstanceOf(EngineError);
    expect(err.code).toBe('EMPTY_OUTPUT');
    expect(err.message).toMatch(/characters of reasoning/);
  });

  // vLLM splits a headless `</think>` only under a reasoning parser the operator chose for a
  // thinking model; a model that merely writes the tag (a page about it, JSON holding it) is text.
  it.each([
    ['prose naming the tag', 'A page about tags: the closing </think> tag ends a block.\n\nSecond paragraph.'],
    ['JSON holding the tag in a string', '{"text": "models end their thinking with </think>\\n then answer", "n": 2}'],
    ['the tag at the end of a line of prose', 'Reasoning models close their thoughts with </think>\nand then answer.'],
    ['the tag on its own line inside a code block', 'Example:\n```\nreasoning\n</think>\nanswer\n```\nEnd.'],
  ])('a headless </think> that is not the end of leading thinking (%s) is left as it is', async (_what, content) => {
    expect((await (await answering(content)).chat(text)).text).toBe(content);
  });

  it('a <think> that is not at the start, or text without the tags, is left as it is', async () => {
    const plain = 'A page about tags: <think>x</think> is how some models think.';
    expect((await (await answering(plain)).chat(text)).text).toBe(plain);
  });
});

/** OpenAI's answer to a strict json_schema whose object does not say additionalProperties false. */
const STRICT_REFUSAL = {
  error: {
    message: "Invalid schema for response_format 'bill': In context=(), 'additionalProperties' is required to be supplied and to be false.",
    type: 'invalid_request_error',
    param: 'response_format',
    code: 'invalid_json_schema',
  },
};

describe("an endpoint that refuses a strict json_schema outside its strict subset (OpenAI, Azure, gateways in front of them)", () => {
  // Valid JSON Schema, and what vLLM's grammar takes; not OpenAI's strict subset (no additionalProperties: false).
  const schema = { type: 'object', properties: { total: { type: 'number' } }, required: ['total'] };
  const ask: ChatRequest = { ...text, responseFormat: { type: 'json_schema', json_schema: { name: 'bill', schema, strict: true } } };

  /** Refuses strict json_schema as OpenAI does; answers JSON to anything else. Records the bodies. */
  async function openAiLike(): Promise<Array<Record<string, unknown>>> {
    const bodies: Array<Record<string, unknown>> = [];
    server = await startScripted((_req, res, seen) => {
      if (seen.path !== '/v1/chat/completions') return json(res, 404, { detail: 'Not Found' });
      const body = JSON.parse(seen.body) as { response_format?: { json_schema?: { strict?: boolean } } };
      bodies.push(body as Record<string, unknown>);
      if (body.response_format?.json_schema?.strict === true) return json(res, 400, STRICT_REFUSAL);
      return json(res, 200, completion('{"total": 12.5}'));
    });
    return bodies;
  }

  it('asked again at once without strict (the schema still sent), remembered for the model, said once', async () => {
    const bodies = await openAiLike();
    const said: string[] = [];
    client = new EngineClient({ url: server!.url, model: 'gpt-4o-mini', onParamsChanged: (s) => said.push(s) });
    expect((await client.chat(ask)).text).toBe('{"total": 12.5}');
    expect((await client.chat(ask)).text).toBe('{"total": 12.5}');
    const formats = bodies.map((b) => b.response_format as { type: string; json_schema: Record<string, unknown> });
    expect(formats.map((f) => f.json_schema.strict)).toEqual([true, undefined, undefined]);
    // Still json_schema with the task's schema: not a weaker rung.
    for (const f of formats) expect(f).toMatchObject({ type: 'json_schema', json_schema: { name: 'bill', schema } });
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/gpt-4o-mini.*strict/);
  });

  it('a schema refused without strict too stays BAD_REQUEST: one resend, not a walk down the ladder', async () => {
    const bodies: unknown[] = [];
    server = await startScripted((_req, res, seen) => {
      bodies.push(JSON.parse(seen.body));
      json(res, 400, STRICT_REFUSAL);
    });
    client = new EngineClient({ url: server.url, model: 'gpt-4o-mini' });
    const err = (await client.chat(ask).catch((e: unknown) => e)) as EngineError;
    expect(err).toBeInstanceOf(EngineError);
    expect(err.code).toBe('BAD_REQUEST');
    expect(bodies).toHaveLength(2);
  });
});

describe("an endpoint that takes json_object only when the messages say JSON (OpenAI, Groq)", () => {
  const refusal = { error: { message: "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.", type: 'invalid_request_error', param: 'messages', code: null } };
  const ask: ChatRequest = { messages: [{ role: 'user', content: [{ type: 'text', text: 'Give the key facts of this page.' }] }], maxTokens: 200, temperature: 0, responseFormat: { type: 'json_object' } };

  it('a schema-less JSON task whose prompt does not say JSON: asked again at once with the instruction, json_object kept, remembered', async () => {
    const bodies: Array<{ response_format?: unknown; messages: unknown }> = [];
    server = await startScripted((_req, res, seen) => {
      const body = JSON.parse(seen.body) as { response_format?: unknown; messages: unknown };
      bodies.push(body);
      if (!/json/i.test(JSON.stringify(body.messages))) return json(res, 400, refusal);
      return json(res, 200, completion('{"facts": ["a"]}'));
    });
    const said: string[] = [];
    client = new EngineClient({ url: server.url, model: 'gpt-4o-mini', onParamsChanged: (s) => said.push(s) });
    expect((await client.chat(ask)).text).toBe('{"facts": ["a"]}');
    expect((await client.chat(ask)).text).toBe('{"facts": ["a"]}');
    expect(bodies).toHaveLength(3);
    for (const b of bodies) expect(b.response_format).toEqual({ type: 'json_object' });
    expect(JSON.stringify(bodies[1]!.messages)).toContain('Answer with one JSON object and nothing else');
    expect(said).toHaveLength(1);
  });
});
