/**
 * OpenAI-compatible servers the client had not met, acted out by the engine emulator over real
 * HTTP (its structuredOutputs, errorsAs200 and forceStream switches) or by a real node:http
 * server where the emulator cannot say it:
 *
 * - an endpoint that refuses `response_format` json_schema (older vLLM, a gateway that takes only
 *   json_object, one that takes none) is asked again at once the way it takes, down the ladder of
 *   structured-fallback.ts; the model is remembered and said once; one that takes it and ignores
 *   it (answers prose) is found by its answers and asked with the schema in the prompt;
 * - a 200 whose body is `{"error": {...}}` is the error it carries (context length, rate limit,
 *   a dead engine), not ENGINE_ERROR;
 * - an event stream sent back to a non-streaming request is assembled into the answer.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EngineClient, EngineError, type ChatRequest } from '../../src/engine/client.ts';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { looksLikeJson } from '../../src/engine/structured-fallback.ts';
import { jsonOf } from '../../src/task/answer.ts';
import { completion, json, startScripted, type Scripted } from './scripted-server.ts';

let emulator: Emulator | undefined;
let server: Scripted | undefined;
let client: EngineClient | undefined;
afterEach(async () => {
  await client?.destroy();
  await emulator?.close();
  await server?.close();
  emulator = server = client = undefined;
});

const schema = { type: 'object', properties: { total: { type: 'number' } }, required: ['total'], additionalProperties: false };
const ask: ChatRequest = {
  messages: [{ role: 'user', content: [{ type: 'text', text: 'The total is 12.5. Give it.' }] }],
  maxTokens: 200,
  temperature: 0,
  responseFormat: { type: 'json_schema', json_schema: { name: 'bill', schema, strict: true } },
};

/** The emulator behind a recording proxy: every chat body the client sent, in order. */
async function recorded(options: Parameters<typeof startEmulator>[0]): Promise<{ url: string; bodies: Array<Record<string, unknown>> }> {
  emulator = await startEmulator({ speed: 50, outputTokensMin: 10, outputTokensMax: 20, ...options });
  const target = emulator.url;
  const bodies: Array<Record<string, unknown>> = [];
  server = await startScripted(async (_req, res, seen) => {
    if (seen.path === '/v1/chat/completions') bodies.push(JSON.parse(seen.body) as Record<string, unknown>);
    const r = await fetch(`${target}${seen.path}`, { method: seen.method, headers: { 'content-type': 'application/json' }, ...(seen.method === 'POST' ? { body: seen.body } : {}) });
    const text = await r.text();
    res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
    res.end(text);
  });
  return { url: server.url, bodies };
}

const lastUserText = (body: Record<string, unknown>) => {
  const messages = body.messages as Array<{ role: string; content: Array<{ type: string; text?: string }> }>;
  return messages.at(-1)!.content.map((p) => p.text ?? '').join('\n');
};

describe('an endpoint that refuses response_format json_schema', () => {
  it("older vLLM (json_object only, guided_json read): asked again at once with guided_json and the schema in the prompt, remembered, said once", async () => {
    const { url, bodies } = await recorded({ structuredOutputs: 'old-vllm' });
    const said: string[] = [];
    client = new EngineClient({ url, onParamsChanged: (s) => said.push(s) });
    // guided_json constrains the answer to the schema on this server.
    const first = await client.chat(ask);
    expect(JSON.parse(first.text)).toEqual({ total: expect.any(Number) });
    const second = await client.chat(ask);
    expect(JSON.parse(second.text)).toEqual({ total: expect.any(Number) });
    expect(bodies.map((b) => (b.guided_json ? 'guided_json' : (b.response_format as { type: string } | undefined)?.type))).toEqual(['json_schema', 'guided_json', 'guided_json']);
    expect(bodies[1]).not.toHaveProperty('response_format');
    expect(bodies[1]!.guided_json).toEqual(schema);
    expect(lastUserText(bodies[1]!)).toContain(`valid against this JSON Schema:\n${JSON.stringify(schema)}`);
    expect(said).toEqual([expect.stringMatching(/refuses response_format json_schema: structured output is asked as vLLM's guided_json/)]);
  });

  it('a gateway that takes only json_object: json_schema, then guided_json refused, then json_object with the schema in the prompt', async () => {
    const { url, bodies } = await recorded({ structuredOutputs: 'json-object' });
    const said: string[] = [];
    client = new EngineClient({ url, onParamsChanged: (s) => said.push(s) });
    const answer = await client.chat(ask);
    expect(answer.text.startsWith('{')).toBe(true);
    expect(bodies.map((b) => (b.guided_json ? 'guided_json' : ((b.response_format as { type: string } | undefined)?.type ?? 'none')))).toEqual(['json_schema', 'guided_json', 'json_object']);
    expect(lastUserText(bodies[2]!)).toContain('valid against this JSON Schema');
    await client.chat(ask);
    expect(bodies).toHaveLength(4);
    expect(bodies[3]!.response_format).toEqual({ type: 'json_object' });
    expect(said).toHaveLength(1);
  });

  it('an endpoint without structured output: down to the schema in the prompt alone; a schema-less JSON task too', async () => {
    const { url, bodies } = await recorded({ structuredOutputs: 'none' });
    client = new EngineClient({ url });
    await client.chat(ask);
    const last = bodies.at(-1)!;
    expect(last).not.toHaveProperty('response_format');
    expect(last).not.toHaveProperty('guided_json');
    expect(lastUserText(last)).toContain('valid against this JSON Schema');
    // json_object from the start (a task without a schema): known to take none, sent without it.
    await client.chat({ ...ask, responseFormat: { type: 'json_object' } });
    expect(bodies.at(-1)).not.toHaveProperty('response_format');
    expect(lastUserText(bodies.at(-1)!)).toContain('Answer with one JSON object and nothing else');
  });

  it('a schema the grammar compiler cannot take stays BAD_REQUEST, sent once', async () => {
    const { url, bodies } = await recorded({});
    client = new EngineClient({ url });
    const err = await client.chat({ ...ask, responseFormat: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { $ref: '#/nowhere' } } } } } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('BAD_REQUEST');
    expect(bodies).toHaveLength(1);
  });

  it('each resend runs the beforeResend hook (where the worker takes its rate pass); the first send does not', async () => {
    const { url } = await recorded({ structuredOutputs: 'json-object' });
    client = new EngineClient({ url });
    let hooks = 0;
    await client.chat(ask, undefined, { beforeResend: async () => void hooks++ });
    expect(hooks).toBe(2);
  });
});

describe('an endpoint that takes response_format without a word and ignores it (answers prose)', () => {
  it('after 3 answers in a row that are not JSON at all: the schema in the prompt alone, the third request sent again so, remembered, said once', async () => {
    const { url, bodies } = await recorded({ structuredOutputs: 'ignored' });
    const said: string[] = [];
    client = new EngineClient({ url, onParamsChanged: (s) => said.push(s) });
    const texts: string[] = [];
    for (let i = 0; i < 4; i++) texts.push((await client.chat(ask)).text);
    // Two answers in prose (the task's checks reject them); the third request's prose answer is
    // not returned: it goes again at once with the schema in the prompt, and the model follows it.
    expect(texts.slice(0, 2).every((t) => t.startsWith('[emulated reply'))).toBe(true);
    for (const t of texts.slice(2)) expect(JSON.parse(t)).toEqual({ total: expect.any(Number) });
    const rung = (b: Record<string, unknown>) => (b.guided_json ? 'guided_json' : ((b.response_format as { type: string } | undefined)?.type ?? 'prompt'));
    expect(bodies.map(rung)).toEqual(['json_schema', 'json_schema', 'json_schema', 'prompt', 'prompt']);
    expect(lastUserText(bodies[3]!)).toContain(`valid against this JSON Schema:\n${JSON.stringify(schema)}`);
    expect(said).toEqual([expect.stringMatching(/ignores response_format json_schema: 3 answers in a row .* were not JSON at all; the schema is put in the prompt alone/)]);
  });

  it('answers that look like JSON (cut off, fenced) are no sign of it: the row starts again', async () => {
    const answers = ['a prose answer', 'another one', '```json\n{"total": 1', 'prose again', 'and again'];
    let n = 0;
    server = await startScripted((_req, res) => json(res, 200, completion(answers[n++ % answers.length]!)));
    client = new EngineClient({ url: server.url, model: 'm' });
    for (let i = 0; i < answers.length; i++) await client.chat(ask);
    expect(server.seen.filter((r) => r.path === '/v1/chat/completions').map((r) => ('response_format' in (JSON.parse(r.body) as object) ? 'json_schema' : 'prompt'))).toEqual(Array(5).fill('json_schema'));
  });
});

describe('looksLikeJson: what counts as an answer in JSON for the ladder (what the task checks take as one: src/task/answer.ts jsonOf)', () => {
  const fenced = '```json\n{"total": 12.5}\n```';
  it('a fence alone, a fence with prose after it, prose with a fence after it: JSON (one fenced value is taken)', () => {
    expect(looksLikeJson(fenced)).toBe(true);
    expect(looksLikeJson(`${fenced}\n\nThe total is taken from the last line.`)).toBe(true);
    expect(looksLikeJson(`Here is the JSON:\n\n${fenced}`)).toBe(true);
    expect(looksLikeJson(`Sure! Here is the JSON:\n${fenced}\nLet me know if you need more.`)).toBe(true);
    expect(looksLikeJson('The bill says:\n~~~\n[{"total": 12.5}]\n~~~')).toBe(true);
    // Cut off at max_tokens inside the fence: still JSON (the answer checks ask again with more room).
    expect(looksLikeJson('Here is the JSON:\n```json\n{"total": 1')).toBe(true);
  });

  it('prose, prose with JSON not fenced after it, two fenced values, a fence of another language: not JSON (the checks take none of them)', () => {
    expect(looksLikeJson('The total is 12.5.')).toBe(false);
    expect(looksLikeJson('[note] The total is 12.5.')).toBe(false);
    expect(looksLikeJson('Here is the JSON: {"total": 12.5}')).toBe(false);
    expect(looksLikeJson(`Two readings:\n${fenced}\nor\n${fenced}`)).toBe(false);
    expect(looksLikeJson('In Python:\n```python\nprint({"total": 12.5})\n```')).toBe(false);
  });

  it('a reply with a long run of blanks inside is judged in linear time (it took 11 s at 80 000 blanks, quadratic)', () => {
    const started = performance.now();
    expect(looksLikeJson(`The table:\n${'\t'.repeat(100_000)}end`)).toBe(false);
    expect(looksLikeJson(`Here:\n\`\`\`json\n{"a": "${' '.repeat(100_000)}"}\n\`\`\``)).toBe(true);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('agrees with the task checks on every mix above', () => {
    const cases = [fenced, `${fenced}\nA note.`, `Here it is:\n${fenced}`, 'The total is 12.5.', 'Here is the JSON: {"total": 12.5}', `Two:\n${fenced}\nor\n${fenced}`];
    for (const text of cases) {
      let taken = true;
      try {
        jsonOf(text);
      } catch {
        taken = false;
      }
      expect([text, looksLikeJson(text)]).toEqual([text, taken]);
    }
  });
});

describe('an endpoint that answers prose then a fenced JSON value (the field ignored, the JSON there)', () => {
  it('is no sign to fall back on: every answer is returned, none sent again, the field kept', async () => {
    server = await startScripted((_req, res) => json(res, 200, completion('Here is the JSON you asked for:\n\n```json\n{"total": 12.5}\n```')));
    const said: string[] = [];
    client = new EngineClient({ url: server.url, model: 'm', onParamsChanged: (s) => said.push(s) });
    const texts: string[] = [];
    for (let i = 0; i < 4; i++) texts.push((await client.chat(ask)).text);
    expect(texts.map((t) => jsonOf(t))).toEqual(Array(4).fill({ total: 12.5 }));
    const chats = server.seen.filter((r) => r.path === '/v1/chat/completions');
    // Each request once, and with its response_format: a third answer was not thrown away and asked again.
    expect(chats.map((r) => ('response_format' in (JSON.parse(r.body) as object) ? 'json_schema' : 'prompt'))).toEqual(Array(4).fill('json_schema'));
    expect(said).toEqual([]);
  });
});

describe('a 200 whose body is an error (some gateways and older servers)', () => {
  it('is classified like the HTTP error it carries: context length, not ENGINE_ERROR', async () => {
    emulator = await startEmulator({ speed: 50, maxModelLen: 1024, errorsAs200: true });
    client = new EngineClient({ url: emulator.url });
    const err = await client.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 5000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ code: 'CONTEXT_TOO_LONG', status: 400, context: { maxContextLength: 1024, maxTokens: 5000 } });
    expect((err as EngineError).message).toMatch(/sent as an error body with HTTP 200/);
  });

  it('a dead engine is ENGINE_DOWN (engine dead), a gateway rate limit ENGINE_RATE_LIMITED, a quota ENGINE_QUOTA', async () => {
    const bodies = [
      { error: { message: 'EngineCore encountered an issue. See stack trace (above) for the root cause.', type: 'InternalServerError', param: null, code: 500 } },
      { error: { message: 'Rate limit reached for requests', type: 'requests', param: null, code: 'rate_limit_exceeded' } },
      { error: { message: 'You exceeded your current quota', type: 'insufficient_quota', param: null, code: 'insufficient_quota' } },
      { object: 'error', message: "This model's maximum context length is 4096 tokens. However, you requested 512 output tokens and your prompt contains 4000 input tokens", type: 'BadRequestError', param: 'input_tokens', code: 400 },
      // A gateway's spent budget, no status in the body: not an engine failure (500) to retry.
      { error: { message: 'Budget has been exceeded! Current cost: 26.075, Max budget: 0.25', type: 'budget_exceeded', param: null } },
    ];
    let n = 0;
    server = await startScripted((_req, res) => json(res, 200, bodies[n++]));
    client = new EngineClient({ url: server.url, model: 'm' });
    const codes: string[] = [];
    for (let i = 0; i < bodies.length; i++) codes.push(await client.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 5 }).then(() => 'ok', (e: EngineError) => `${e.code}${e.engineDead ? ' dead' : ''}`));
    expect(codes).toEqual(['ENGINE_DOWN dead', 'ENGINE_RATE_LIMITED', 'ENGINE_QUOTA', 'CONTEXT_TOO_LONG', 'ENGINE_QUOTA']);
  });

  it('a refusal of a setting sent with a 200 is still learnt from: the request goes again as the endpoint asks', async () => {
    server = await startScripted((_req, res, seen) => {
      const body = JSON.parse(seen.body) as Record<string, unknown>;
      if ('max_tokens' in body) return json(res, 200, { error: { message: "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.", type: 'invalid_request_error', param: 'max_tokens', code: 'unsupported_parameter' } });
      return json(res, 200, completion('fine'));
    });
    client = new EngineClient({ url: server.url, model: 'o3' });
    expect((await client.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 5 })).text).toBe('fine');
  });
});

describe('an event stream sent back to a non-streaming request (a proxy that forces streaming)', () => {
  it('is assembled into the answer: its text, finish_reason and usage', async () => {
    emulator = await startEmulator({ speed: 50, outputTokensMin: 30, outputTokensMax: 40, forceStream: true });
    client = new EngineClient({ url: emulator.url });
    const answer = await client.chat({ messages: [{ role: 'user', content: 'Say something.' }], maxTokens: 300, requestId: 'sse-1' });
    expect(answer.text).toMatch(/^\[emulated reply by docbatch\/emulated-vl\]\n/);
    expect(answer.finishReason).toBe('stop');
    expect(answer.usage.completionTokens).toBeGreaterThanOrEqual(30);
    expect(answer.usage.promptTokens).toBeGreaterThan(0);
    expect(answer.id).toBe('chatcmpl-sse-1');
    // Cut off at max_tokens: "length", as the task's checks need to see it.
    const cut = await client.chat({ messages: [{ role: 'user', content: 'Say something else.' }], maxTokens: 25 });
    expect(cut.finishReason).toBe('length');
  });

  it('a stream cut off before its end is ENGINE_ERROR (partial), one that carries an error is that error', async () => {
    const chunk = (content: string, finish: string | null = null) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`;
    const streams = [
      chunk('Hel') + chunk('lo'),
      chunk('Hel') + `data: ${JSON.stringify({ error: { message: 'EngineCore encountered an issue.', type: 'InternalServerError', code: 500 } })}\n\ndata: [DONE]\n\n`,
      chunk('Hel') + chunk('lo', 'stop') + 'data: [DONE]\n\n',
    ];
    let n = 0;
    server = await startScripted((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(streams[n++]);
    });
    client = new EngineClient({ url: server.url, model: 'm' });
    const ask = () => client!.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 5 });
    await expect(ask()).rejects.toMatchObject({ code: 'ENGINE_ERROR', message: expect.stringMatching(/ended before its end/) });
    await expect(ask()).rejects.toMatchObject({ code: 'ENGINE_DOWN', engineDead: true });
    expect((await ask()).text).toBe('Hello');
  });
});

describe('a context-length refusal that names only a lower bound of the prompt (vLLM stops counting a prompt that cannot fit)', () => {
  it('is read as a bound, not as the prompt: promptTokens unknown, promptTokensAtLeast given', async () => {
    emulator = await startEmulator({ speed: 50, maxModelLen: 1024, contextLowerBound: true });
    client = new EngineClient({ url: emulator.url });
    // About 200 prompt tokens and 1000 more asked: over 1024. vLLM counted only up to 1024 - 1000 + 1.
    const err = await client.chat({ messages: [{ role: 'user', content: 'the page '.repeat(100) }], maxTokens: 1000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CONTEXT_TOO_LONG', context: { maxContextLength: 1024, maxTokens: 1000, promptTokens: null, promptTokensAtLeast: 25 } });
  });
});

describe('other answers servers send', () => {
  const hi = { messages: [{ role: 'user' as const, content: 'Hi' }], maxTokens: 5 };

  it('a JSON completion labelled text/event-stream is read as JSON', async () => {
    server = await startScripted((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(JSON.stringify(completion('plain json')));
    });
    client = new EngineClient({ url: server.url, model: 'm' });
    expect((await client.chat(hi)).text).toBe('plain json');
  });

  // Gateways passing on a provider's own word for a reply cut at its token limit (Anthropic's
  // stop_reason max_tokens, Gemini's MAX_TOKENS, the Responses API's max_output_tokens): a page
  // cut off must not be taken for a complete one.
  it.each(['max_tokens', 'MAX_TOKENS', 'max_output_tokens'])('finish_reason %s is a reply cut at max_tokens ("length")', async (finish) => {
    server = await startScripted((_req, res) => json(res, 200, { ...completion('The first half of the pa'), choices: [{ index: 0, message: { role: 'assistant', content: 'The first half of the pa' }, finish_reason: finish }] }));
    client = new EngineClient({ url: server.url, model: 'm' });
    expect((await client.chat(hi)).finishReason).toBe('length');
  });

  // OpenRouter (and gateways like it) end a choice whose provider failed mid-answer with
  // finish_reason "error" and the error on the choice: the text is partial, never the answer.
  it('finish_reason "error" (the provider failed mid-answer) is ENGINE_ERROR, not a partial answer taken', async () => {
    server = await startScripted((_req, res) => json(res, 200, { ...completion(''), choices: [{ index: 0, message: { role: 'assistant', content: 'The first half' }, finish_reason: 'error', error: { code: 502, message: 'Provider disconnected' } }] }));
    client = new EngineClient({ url: server.url, model: 'm' });
    const err = (await client.chat(hi).catch((e: unknown) => e)) as EngineError;
    expect(err).toBeInstanceOf(EngineError);
    expect(err.code).toBe('ENGINE_ERROR');
    expect(err.message).toMatch(/Provider disconnected/);
  });

  it('an event stream whose events are not separated by blank lines is still assembled', async () => {
    const chunk = (content: string, finish: string | null = null) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n`;
    server = await startScripted((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`${chunk('one ')}${chunk('two', 'stop')}data: [DONE]\n`);
    });
    client = new EngineClient({ url: server.url, model: 'm' });
    expect((await client.chat(hi)).text).toBe('one two');
  });

  describe('tool calls in an event stream (a gateway that implements structured output as a forced tool call)', () => {
    const streamed = (calls: Array<{ index: number; args: string }>) =>
      `${calls.map((c) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model: 'm', choices: [{ index: 0, delta: { tool_calls: [{ index: c.index, function: { arguments: c.args } }] }, finish_reason: null }] })}\n\n`).join('')}data: ${JSON.stringify({ id: 'c', choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] })}\n\ndata: [DONE]\n\n`;
    const serve = async (body: string) => {
      server = await startScripted((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(body);
      });
      client = new EngineClient({ url: server.url, model: 'm' });
    };

    it('a huge index (2^31) is one call, read at once: no array of that length', async () => {
      await serve(streamed([{ index: 2 ** 31, args: '{"total": ' }, { index: 2 ** 31, args: '1}' }]));
      const started = performance.now();
      expect((await client!.chat(hi)).text).toBe('{"total": 1}');
      expect(performance.now() - started).toBeLessThan(2000);
    }, 10_000);

    it('a lone call at an index other than 0 is the answer', async () => {
      await serve(streamed([{ index: 3, args: '{"total": 2}' }]));
      expect((await client!.chat(hi)).text).toBe('{"total": 2}');
    });

    it('more than 64 distinct calls is ENGINE_ERROR, not an answer', async () => {
      await serve(streamed(Array.from({ length: 65 }, (_, i) => ({ index: i * 1000, args: '{}' }))));
      await expect(client!.chat(hi)).rejects.toMatchObject({ code: 'ENGINE_ERROR', message: expect.stringMatching(/more than 64 tool calls/) });
    });
  });

  it("a model's refusal (OpenAI's message.refusal, no content) is EMPTY_OUTPUT that quotes it", async () => {
    server = await startScripted((_req, res) => json(res, 200, { ...completion(''), choices: [{ index: 0, message: { role: 'assistant', content: null, refusal: "I'm sorry, I can't help with that." }, finish_reason: 'stop' }] }));
    client = new EngineClient({ url: server.url, model: 'm' });
    await expect(client.chat(hi)).rejects.toMatchObject({ code: 'EMPTY_OUTPUT', message: expect.stringContaining("the model refused: \"I'm sorry, I can't help with that.\"") });
  });

  it('more images than the server takes in one prompt (older vLLM: 1) is BAD_REQUEST that says what to change', async () => {
    emulator = await startEmulator({ speed: 50, maxImagesPerPrompt: 1 });
    client = new EngineClient({ url: emulator.url });
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
    const image = { type: 'image_url' as const, image_url: { url: `data:image/png;base64,${png}` } };
    const err = await client.chat({ messages: [{ role: 'user', content: [{ type: 'text', text: 'Both pages.' }, image, image] }], maxTokens: 5 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/At most 1 image.*--limit-mm-per-prompt/) });
  });
});

describe('a 200 whose body is an error, on the other routes', () => {
  it('/v1/models: a gateway refusing the key with a 200 is ENGINE_UNAUTHORIZED, not an unreadable model list', async () => {
    server = await startScripted((_req, res) => json(res, 200, { error: 'Unauthorized' }));
    client = new EngineClient({ url: server.url });
    await expect(client.models()).rejects.toMatchObject({ code: 'ENGINE_UNAUTHORIZED' });
  });

  it('/tokenize: an error in a 200 is that error (a rate limit), not a body without a count', async () => {
    server = await startScripted((_req, res) => json(res, 200, { error: { message: 'Rate limit reached for requests', type: 'requests', code: 'rate_limit_exceeded' } }));
    client = new EngineClient({ url: server.url, model: 'm' });
    await expect(client.tokenize({ prompt: 'Hi' })).rejects.toMatchObject({ code: 'ENGINE_RATE_LIMITED' });
  });

  it("/tokenize: llama.cpp's answer to a body it does not read (`{\"tokens\": []}`: it wants `content`) is no count, not 0 tokens", async () => {
    let asked: unknown;
    server = await startScripted((_req, res, seen) => {
      asked = JSON.parse(seen.body);
      json(res, 200, { tokens: [] });
    });
    client = new EngineClient({ url: server.url, model: 'm' });
    await expect(client.tokenize({ messages: [{ role: 'user', content: 'Hi there' }] })).rejects.toMatchObject({ code: 'ENGINE_ERROR', message: /no tokens/ });
    expect(asked).toMatchObject({ model: 'm', messages: [{ role: 'user', content: 'Hi there' }] });
  });
});

describe("a model list that gives the context length under another name", () => {
  it("OpenRouter's context_length and llama.cpp's meta.n_ctx are the model's context (not n_ctx_train)", async () => {
    server = await startScripted((_req, res) =>
      json(res, 200, {
        object: 'list',
        data: [
          { id: 'routed', object: 'model', context_length: 65536 },
          { id: 'llama', object: 'model', owned_by: 'llamacpp', meta: { n_ctx: 16384, n_ctx_train: 262144 } },
          { id: 'bare', object: 'model' },
        ],
      }),
    );
    client = new EngineClient({ url: server.url });
    expect(await client.models()).toEqual([
      { id: 'routed', maxModelLen: 65536 },
      { id: 'llama', maxModelLen: 16384 },
      { id: 'bare', maxModelLen: null },
    ]);
  });
});

describe("a 429 that says when to come back other than by Retry-After", () => {
  const limited = { error: { message: 'Rate limit reached for requests', type: 'requests', param: null, code: 'rate_limit_exceeded' } };
  it.each([
    ['retry-after-ms (Azure OpenAI)', { 'retry-after-ms': '1500' }, 1500],
    ['the reset of the spent budget, not of one with room left', { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '2s', 'x-ratelimit-remaining-tokens': '5000', 'x-ratelimit-reset-tokens': '6m0s' }, 2000],
    ['the later reset when both are spent', { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1s', 'x-ratelimit-remaining-tokens': '0', 'x-ratelimit-reset-tokens': '1m30.5s' }, 90_500],
    ['milliseconds', { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '20ms' }, 20],
  ])('%s', async (_what, headers, ms) => {
    server = await startScripted((_req, res) => json(res, 429, limited, headers as Record<string, string>));
    client = new EngineClient({ url: server.url, model: 'm' });
    await expect(client.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 5 })).rejects.toMatchObject({ code: 'ENGINE_RATE_LIMITED', retryAfterMs: ms });
  });
});
