/**
 * The emulator's HTTP API as a client sees it: endpoints, response shapes, errors and their
 * styles, deterministic replies that describe their input. Real HTTP on port 0.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { call, chatBody, dataUrl, makeImage, newAgent } from './helpers.ts';

const agent = newAgent();
let emu: Emulator;
let png: Buffer;
let jpeg: Buffer;

const sha16 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex').slice(0, 16);
const words = (n: number, from = 0): string => Array.from({ length: n }, (_, i) => `w${i + from}`).join(' ');

beforeAll(async () => {
  emu = await startEmulator({ speed: 50, outputTokensMin: 60, outputTokensMax: 120, maxModelLen: 8192, kvCacheTokens: 65536 });
  png = await makeImage(1288, 1000, 'png', 1);
  jpeg = await makeImage(300, 200, 'jpeg', 2);
});

afterAll(async () => {
  await emu.close();
  await agent.close();
});

const post = (path: string, body: unknown, headers?: Record<string, string>) => call(agent, `${emu.url}${path}`, { body, headers });
const get = (path: string, headers?: Record<string, string>) => call(agent, `${emu.url}${path}`, { headers });

describe('endpoints', () => {
  it('GET /health answers 200 with an empty body', async () => {
    const r = await get('/health');
    expect(r.status).toBe(200);
    expect(r.text).toBe('');
  });

  it('GET /v1/models lists the served model with max_model_len', async () => {
    const r = await get('/v1/models');
    expect(r.status).toBe(200);
    expect(r.json.object).toBe('list');
    expect(r.json.data).toHaveLength(1);
    expect(r.json.data[0]).toMatchObject({ id: 'docbatch/emulated-vl', object: 'model', owned_by: 'vllm', max_model_len: 8192 });
  });

  it('an unknown route is 404 {"detail":"Not Found"}; a wrong method is 405', async () => {
    const r = await get('/v1/nothing');
    expect(r.status).toBe(404);
    expect(r.json).toEqual({ detail: 'Not Found' });
    const m = await get('/v1/chat/completions');
    expect(m.status).toBe(405);
  });

  it('url has no trailing slash and the port is the one listening', () => {
    expect(emu.url).toBe(`http://127.0.0.1:${emu.port}`);
    expect(emu.port).toBeGreaterThan(0);
  });
});

describe('chat completions', () => {
  it('describes each image of the last user message and its last text part', async () => {
    const text = `${words(20)}\n\n  tail "quoted" end`;
    const body = chatBody(text, [dataUrl(png), dataUrl(jpeg, 'image/jpeg')]);
    const r = await post('/v1/chat/completions', body, { 'x-request-id': 'unit-42' });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ id: 'chatcmpl-unit-42', object: 'chat.completion', model: 'docbatch/emulated-vl' });
    const choice = r.json.choices[0];
    expect(choice.index).toBe(0);
    expect(choice.message.role).toBe('assistant');
    const lines = (choice.message.content as string).split('\n');
    expect(lines[0]).toBe('[emulated reply by docbatch/emulated-vl]');
    expect(lines[1]).toBe(`image 1: 1288x1000 png sha256=${sha16(png)}`);
    expect(lines[2]).toBe(`image 2: 300x200 jpeg sha256=${sha16(jpeg)}`);
    expect(lines[3]).toBe(`text: words=23 sha256=${sha16(text)} first="w0 w1 w2 w3 w4 w5 w6 w7" last="w15 w16 w17 w18 w19 tail \\"quoted\\" end"`);
    // Image tokens: ceil(1288/28) * ceil(1000/28) = 46 * 36 = 1656, plus the text.
    expect(r.json.usage.prompt_tokens).toBeGreaterThan(1656 + (300 / 28) * (200 / 28));
    expect(r.json.usage.total_tokens).toBe(r.json.usage.prompt_tokens + r.json.usage.completion_tokens);
    expect(r.json.usage.completion_tokens).toBeGreaterThanOrEqual(60);
    expect(r.json.usage.completion_tokens).toBeLessThanOrEqual(120);
    expect(choice.finish_reason).toBe('stop');
  });

  it('counts the same prompt tokens as /tokenize with the same messages', async () => {
    const body = chatBody(words(300), [dataUrl(jpeg, 'image/jpeg')]);
    const [chat, tok] = await Promise.all([post('/v1/chat/completions', body), post('/tokenize', { messages: body.messages })]);
    expect(tok.status).toBe(200);
    expect(tok.json.count).toBe(chat.json.usage.prompt_tokens);
    expect(tok.json.tokens).toHaveLength(tok.json.count);
    expect(tok.json.max_model_len).toBe(8192);
  });

  it('is deterministic: the same request gets the same reply, another text another one', async () => {
    const a = await post('/v1/chat/completions', chatBody('the same words', [dataUrl(png)]));
    const b = await post('/v1/chat/completions', chatBody('the same words', [dataUrl(png)]));
    const c = await post('/v1/chat/completions', chatBody('other words', [dataUrl(png)]));
    expect(a.json.choices[0].message.content).toBe(b.json.choices[0].message.content);
    expect(a.json.usage).toEqual(b.json.usage);
    expect(c.json.choices[0].message.content).not.toBe(a.json.choices[0].message.content);
    expect(a.json.id).not.toBe(b.json.id);
  });

  it('lists only the images of the LAST user message', async () => {
    const body = {
      messages: [
        { role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl(png) } }, { type: 'text', text: 'first turn' }] },
        { role: 'assistant', content: 'ok' },
        { role: 'user', content: 'second turn only text' },
      ],
    };
    const r = await post('/v1/chat/completions', body);
    const content = r.json.choices[0].message.content as string;
    expect(content).not.toContain('image 1:');
    expect(content.split('\n')[1]).toMatch(/^text: words=4 .* first="second turn only text"/);
  });

  it('caps the reply at max_tokens with finish_reason "length"; a capped reply is a prefix', async () => {
    const full = await post('/v1/chat/completions', chatBody(words(50)));
    const capped = await post('/v1/chat/completions', chatBody(words(50), [], { max_tokens: 50 }));
    expect(capped.json.choices[0].finish_reason).toBe('length');
    expect(capped.json.usage.completion_tokens).toBe(50);
    expect(full.json.choices[0].message.content.startsWith(capped.json.choices[0].message.content)).toBe(true);
    const viaNewName = await post('/v1/chat/completions', chatBody(words(50), [], { max_completion_tokens: 7 }));
    expect(viaNewName.json.usage.completion_tokens).toBe(7);
  });

  it('accepts an omitted or matching model and ignores unknown fields (guided_json included)', async () => {
    const r = await post('/v1/chat/completions', chatBody('x', [], { model: 'docbatch/emulated-vl', guided_json: { type: 'object' }, frobnicate: 3 }));
    expect(r.status).toBe(200);
  });

  it('answers 404 NotFoundError for an unknown model', async () => {
    const r = await post('/v1/chat/completions', chatBody('x', [], { model: 'gpt-9' }));
    expect(r.status).toBe(404);
    expect(r.json).toEqual({ error: { message: 'The model `gpt-9` does not exist.', type: 'NotFoundError', param: 'model', code: 404 } });
  });

  it("rejects prompt + max_tokens over the context with vLLM's message", async () => {
    const body = chatBody(words(1200));
    const tok = await post('/tokenize', { messages: body.messages });
    const p = tok.json.count as number;
    const r = await post('/v1/chat/completions', { ...body, max_tokens: 8192 - p + 1 });
    expect(r.status).toBe(400);
    expect(r.json.error.type).toBe('BadRequestError');
    expect(r.json.error.param).toBe('input_tokens');
    expect(r.json.error.message).toBe(
      `This model's maximum context length is 8192 tokens. However, you requested ${8192 - p + 1} output tokens and your prompt contains ${p} input tokens, ` +
        `for a total of 8193 tokens. Please reduce the length of the input prompt or the number of requested output tokens. (parameter=input_tokens, value=${p})`,
    );
    const fits = await post('/v1/chat/completions', { ...body, max_tokens: 8192 - p });
    expect(fits.status).toBe(200);
    // Without max_tokens the default is the rest of the context: only a prompt over it fails.
    const tooLong = await post('/v1/chat/completions', chatBody(words(9000)));
    expect(tooLong.status).toBe(400);
    expect(tooLong.json.error.message).toMatch(/^This model's maximum context length is 8192 tokens\. However, you requested 0 output tokens and your prompt contains \d+ input tokens/);
  });

  it('refuses http(s) image URLs (400) and non-base64 data URLs (501), and undecodable images (400)', async () => {
    const remote = await post('/v1/chat/completions', chatBody('x', ['https://example.com/a.png']));
    expect(remote.status).toBe(400);
    const plain = await post('/v1/chat/completions', chatBody('x', ['data:image/png,rawbytes']));
    expect(plain.status).toBe(501);
    expect(plain.json.error).toMatchObject({ type: 'NotImplementedError', code: 501 });
    const junk = await post('/v1/chat/completions', chatBody('x', [dataUrl(Buffer.from('not an image at all'))]));
    expect(junk.status).toBe(400);
  });

  it('answers 400 for invalid JSON and for a bad max_tokens', async () => {
    const r = await post('/v1/chat/completions', '{"messages": [');
    expect(r.status).toBe(400);
    expect(r.json.error.type).toBe('BadRequestError');
    const zero = await post('/v1/chat/completions', chatBody('x', [], { max_tokens: 0 }));
    expect(zero.status).toBe(400);
  });

  it('streams SSE chunks whose text adds up to the non-streamed reply, then [DONE]', async () => {
    const body = chatBody(words(30), [dataUrl(jpeg, 'image/jpeg')]);
    const plain = await post('/v1/chat/completions', body);
    const r = await post('/v1/chat/completions', { ...body, stream: true, stream_options: { include_usage: true } });
    expect(r.status).toBe(200);
    expect(String(r.headers['content-type'])).toContain('text/event-stream');
    const events = r.text.split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    const text = chunks.flatMap((c) => c.choices.map((ch: any) => ch.delta.content ?? '')).join('');
    expect(text).toBe(plain.json.choices[0].message.content);
    expect(chunks.filter((c) => c.choices.length > 0).at(-1).choices[0].finish_reason).toBe('stop');
    expect(chunks.at(-1).usage).toEqual(plain.json.usage);
    expect(chunks.length).toBeGreaterThan(3);
  });
});

describe('batch and completions', () => {
  it('POST /v1/chat/completions/batch answers one choice per conversation, indexed', async () => {
    const convs = [0, 1, 2].map((i) => chatBody(`conversation number ${i}`).messages);
    const r = await post('/v1/chat/completions/batch', { messages: convs });
    expect(r.status).toBe(200);
    expect(r.json.choices.map((c: any) => c.index)).toEqual([0, 1, 2]);
    r.json.choices.forEach((c: any, i: number) => expect(c.message.content).toContain(`last="conversation number ${i}"`));
    const single = await post('/v1/chat/completions', { messages: convs[1] });
    expect(r.json.choices[1].message.content).toBe(single.json.choices[0].message.content);
    expect(r.json.usage.prompt_tokens).toBe(3 * single.json.usage.prompt_tokens);
  });

  it('POST /v1/completions takes a string (max_tokens 16 by default) or a list of prompts', async () => {
    const one = await post('/v1/completions', { prompt: 'alpha beta gamma' });
    expect(one.status).toBe(200);
    expect(one.json.object).toBe('text_completion');
    expect(one.json.id).toMatch(/^cmpl-/);
    expect(one.json.usage.completion_tokens).toBe(16);
    expect(one.json.choices[0].finish_reason).toBe('length');
    expect(one.json.choices[0].text).toContain(`text: words=3 sha256=${sha16('alpha beta gamma')}`);

    const list = await post('/v1/completions', { prompt: ['one two', 'three four five'], max_tokens: 200 });
    expect(list.json.choices).toHaveLength(2);
    expect(list.json.choices[0]).toMatchObject({ index: 0, finish_reason: 'stop' });
    expect(list.json.choices[0].text).toContain('first="one two"');
    expect(list.json.choices[1].text).toContain('first="three four five"');
  });

  it('POST /tokenize counts a prompt', async () => {
    const r = await post('/tokenize', { prompt: 'hello world' });
    expect(r.json).toMatchObject({ count: 2, max_model_len: 8192, tokens: [expect.any(Number), expect.any(Number)] });
  });
});

describe('limits, styles and look-alike switches', () => {
  it('rejects more images than maxImagesPerPrompt with vLLM\'s message', async () => {
    const one = await startEmulator({ maxImagesPerPrompt: 1, speed: 50 });
    try {
      const r = await call(agent, `${one.url}/v1/chat/completions`, { body: chatBody('x', [dataUrl(jpeg, 'image/jpeg'), dataUrl(jpeg, 'image/jpeg')]) });
      expect(r.status).toBe(400);
      expect(r.json.error.message).toBe('At most 1 image(s) may be provided in one prompt.');
      expect(one.stats().errors.too_many_images).toBe(1);
    } finally {
      await one.close();
    }
  });

  it('renders errors in the vllm, flat and ollama shapes', async () => {
    const bad = chatBody('x', [], { model: 'nope' });
    try {
      emu.setFaults({ errorStyle: 'flat' });
      const flat = await post('/v1/chat/completions', bad);
      expect(flat.json).toEqual({ object: 'error', message: 'The model `nope` does not exist.', type: 'NotFoundError', param: 'model', code: 404 });
      emu.setFaults({ errorStyle: 'ollama' });
      const ollama = await post('/v1/chat/completions', bad);
      expect(ollama.json).toEqual({ error: { message: 'The model `nope` does not exist.', type: 'not_found_error', param: null, code: null } });
    } finally {
      emu.setFaults({ errorStyle: 'vllm' });
    }
  });

  it('truncatePrompts (Ollama past num_ctx): a prompt over the context is answered, prompt_tokens = the context; /api/ps names it, /v1/models does not', async () => {
    const long = chatBody(words(9000), []);
    expect((await post('/v1/chat/completions', long)).status).toBe(400);
    expect((await get('/api/ps')).status).toBe(404);
    try {
      emu.setFaults({ truncatePrompts: true });
      const r = await post('/v1/chat/completions', { ...long, max_tokens: 20 });
      expect(r.status).toBe(200);
      expect((r.json as { usage: { prompt_tokens: number } }).usage.prompt_tokens).toBe(8192);
      expect((await get('/api/ps')).json).toMatchObject({ models: [{ context_length: 8192 }] });
      expect((await get('/v1/models')).json).not.toHaveProperty('data.0.max_model_len');
    } finally {
      emu.setFaults({ truncatePrompts: false });
    }
  });

  it('requires the API key on /v1 only, answering 401 {"error":"Unauthorized"}', async () => {
    try {
      emu.setFaults({ apiKey: 's3cret' });
      const denied = await get('/v1/models');
      expect(denied.status).toBe(401);
      expect(denied.json).toEqual({ error: 'Unauthorized' });
      expect((await get('/v1/models', { authorization: 'Bearer s3cret' })).status).toBe(200);
      expect((await get('/health')).status).toBe(200);
    } finally {
      emu.setFaults({ apiKey: null });
    }
  });

  it('can hide /metrics, /tokenize and /health, reject list prompts, and limit pending requests', async () => {
    try {
      emu.setFaults({ noMetrics: true, noTokenize: true, noHealth: true, rejectListPrompts: true, maxPending: 0 });
      expect((await get('/metrics')).status).toBe(404);
      expect((await post('/tokenize', { prompt: 'x' })).status).toBe(404);
      const health = await get('/health');
      expect(health.status).toBe(404);
      expect(health.json).toEqual({ detail: 'Not Found' });
      expect((await post('/v1/completions', { prompt: ['a', 'b'] })).status).toBe(400);
      const busy = await post('/v1/completions', { prompt: 'a' });
      expect(busy.status).toBe(503);
      expect(busy.json.error.message).toBe('server busy, please try again.  maximum pending requests exceeded');
    } finally {
      emu.setFaults({ noMetrics: false, noTokenize: false, noHealth: false, rejectListPrompts: false, maxPending: null });
    }
    expect((await get('/metrics')).status).toBe(200);
  });

  it('keeps honest counts of requests and errors by kind', () => {
    const s = emu.stats();
    expect(s.state).toBe('alive');
    expect(s.errors.context_length).toBeGreaterThanOrEqual(2);
    expect(s.errors.model_not_found).toBeGreaterThanOrEqual(3);
    expect(s.errors.not_implemented).toBe(1);
    expect(s.errors.busy).toBe(1);
    expect(s.errors.unauthorized).toBe(1);
    expect(s.errorsTotal).toBe(Object.values(s.errors).reduce((a, b) => a + b, 0));
    expect(s.completed).toBeGreaterThan(10);
    expect(s.generationTokens).toBeGreaterThan(0);
    expect(s.aborted).toBe(0);
  });
});
