/**
 * OpenAI's reasoning models (o1, o3, o4-mini, gpt-5 ...) refuse `max_tokens` ("Use
 * 'max_completion_tokens' instead") and any temperature or top_p but the default, with a 400
 * `invalid_request_error`. The client sends the request again as the endpoint asks, and keeps
 * asking that model that way, instead of failing every unit as BAD_REQUEST.
 *
 * The endpoint is a real node:http server answering with OpenAI's own error bodies.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EngineClient, EngineError } from '../../src/engine/client.ts';
import { completion, json, startScripted, type Scripted } from './scripted-server.ts';

let server: Scripted | undefined;
let client: EngineClient | undefined;
afterEach(async () => {
  await client?.destroy();
  await server?.close();
  server = client = undefined;
});

const unsupportedParameter = (param: string, instead: string) => ({
  error: { message: `Unsupported parameter: '${param}' is not supported with this model. Use '${instead}' instead.`, type: 'invalid_request_error', param, code: 'unsupported_parameter' },
});
const unsupportedValue = (param: string, value: unknown) => ({
  error: { message: `Unsupported value: '${param}' does not support ${String(value)} with this model. Only the default (1) value is supported.`, type: 'invalid_request_error', param, code: 'unsupported_value' },
});

/** A reasoning model's endpoint: max_completion_tokens only; temperature and top_p only at 1. */
async function reasoningEndpoint(): Promise<Scripted> {
  return startScripted((_req, res, seen) => {
    const body = JSON.parse(seen.body || '{}') as Record<string, unknown>;
    if ('max_tokens' in body) return json(res, 400, unsupportedParameter('max_tokens', 'max_completion_tokens'));
    for (const param of ['temperature', 'top_p']) if (param in body && body[param] !== 1) return json(res, 400, unsupportedValue(param, body[param]));
    return json(res, 200, completion(`room ${String(body.max_completion_tokens)}`));
  });
}

const chatBodies = (s: Scripted) => s.seen.filter((r) => r.path === '/v1/chat/completions').map((r) => JSON.parse(r.body) as Record<string, unknown>);

describe('an endpoint that refuses max_tokens and sampling settings (OpenAI reasoning models)', () => {
  it('is asked again with max_completion_tokens and without them, and keeps being asked that way', async () => {
    server = await reasoningEndpoint();
    client = new EngineClient({ url: server.url, model: 'o4-mini' });
    const ask = { messages: [{ role: 'user' as const, content: 'Hi' }], maxTokens: 300, temperature: 0, topP: 0.9 };
    const first = await client.chat(ask);
    expect(first.text).toBe('room 300');
    const second = await client.chat(ask);
    expect(second.text).toBe('room 300');
    const bodies = chatBodies(server);
    const last = bodies.at(-1)!;
    expect(last).toMatchObject({ max_completion_tokens: 300 });
    expect(last).not.toHaveProperty('max_tokens');
    expect(last).not.toHaveProperty('temperature');
    expect(last).not.toHaveProperty('top_p');
    expect(bodies).toHaveLength(5); // three refusals, then each call once
  });

  it('still fails a request refused for anything else, as BAD_REQUEST naming it, without resending', async () => {
    server = await startScripted((_req, res) =>
      json(res, 400, { error: { message: "Invalid value for 'messages': empty.", type: 'invalid_request_error', param: 'messages', code: 'invalid_value' } }),
    );
    client = new EngineClient({ url: server.url, model: 'o4-mini' });
    const err = await client.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 10, temperature: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('BAD_REQUEST');
    expect(chatBodies(server)).toHaveLength(1);
  });

  it('keeps a setting the endpoint did not name: a refused temperature does not drop the seed', async () => {
    server = await startScripted((_req, res, seen) => {
      const body = JSON.parse(seen.body) as Record<string, unknown>;
      if ('temperature' in body) return json(res, 400, unsupportedValue('temperature', body.temperature));
      return json(res, 200, completion(`seed ${String(body.seed)}`));
    });
    client = new EngineClient({ url: server.url, model: 'gpt-5' });
    const result = await client.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 10, temperature: 0.2, seed: 7 });
    expect(result.text).toBe('seed 7');
  });
});

describe('the warning that requests change for a model', () => {
  it('is given once per model and setting, also when many requests meet the refusal at once', async () => {
    // Every refusal comes back only once all eight requests have arrived: all eight meet it
    // before any of them has learnt from it, as a worker's window of units does.
    let arrived = 0;
    const held: Array<() => void> = [];
    server = await startScripted(async (_req, res, seen) => {
      const body = JSON.parse(seen.body || '{}') as Record<string, unknown>;
      if ('max_tokens' in body) {
        arrived++;
        if (arrived < 8) await new Promise<void>((r) => held.push(r));
        else for (const release of held.splice(0)) release();
        return json(res, 400, unsupportedParameter('max_tokens', 'max_completion_tokens'));
      }
      return json(res, 200, completion('ok'));
    });
    const said: string[] = [];
    client = new EngineClient({ url: server.url, model: 'o3', onParamsChanged: (sentence) => said.push(sentence) });
    const ask = { messages: [{ role: 'user' as const, content: 'Hi' }], maxTokens: 50 };
    const answers = await Promise.all(Array.from({ length: 8 }, () => client!.chat(ask)));
    expect(answers.map((a) => a.text)).toEqual(Array(8).fill('ok'));
    expect(said).toHaveLength(1);
  });
});

describe('a refusal whose body a proxy appended to (junk after the JSON, as engine-client.md says is read)', () => {
  it('is still read for the setting it names: the request goes again without it', async () => {
    server = await startScripted((_req, res, seen) => {
      const body = JSON.parse(seen.body) as Record<string, unknown>;
      if ('temperature' in body) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(`${JSON.stringify(unsupportedValue('temperature', body.temperature))}\n<!-- served by edge-7 -->\n`);
        return;
      }
      return json(res, 200, completion('no temperature'));
    });
    client = new EngineClient({ url: server.url, model: 'o1' });
    const result = await client.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 10, temperature: 0 });
    expect(result.text).toBe('no temperature');
  });
});

describe('an endpoint that caps replies below the max_tokens asked', () => {
  /** A model whose replies are capped at `cap` tokens, refusing a larger max_tokens with `say(asked)`. */
  async function capped(cap: number, say: (asked: number) => string): Promise<Scripted> {
    return startScripted((_req, res, seen) => {
      const body = JSON.parse(seen.body || '{}') as Record<string, unknown>;
      const asked = Number(body.max_tokens ?? body.max_completion_tokens);
      if (asked > cap) return json(res, 400, { error: { message: say(asked), type: 'invalid_request_error', param: 'max_tokens', code: 'invalid_value' } });
      return json(res, 200, completion(`cap ${asked}`));
    });
  }

  it.each([
    ['OpenAI', (asked: number) => `max_tokens is too large: ${asked}. This model supports at most 4096 completion tokens, whereas you provided ${asked}.`],
    ['an Anthropic-compatible gateway', (asked: number) => `max_tokens: ${asked} > 4096, which is the maximum allowed number of output tokens for claude-x`],
    ['Groq', (asked: number) => `\`max_tokens\` must be less than or equal to \`4096\`, the maximum value for \`max_tokens\` is less than the \`context_window\` for this model (asked ${asked})`],
  ])('%s: asked again at once within the cap, which is remembered for the model and said once', async (_who, say) => {
    server = await capped(4096, say);
    const said: string[] = [];
    client = new EngineClient({ url: server.url, model: 'capped', onParamsChanged: (s) => said.push(s) });
    expect((await client.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 10_000 })).text).toBe('cap 4096');
    expect((await client.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 8000 })).text).toBe('cap 4096');
    // A request within the cap goes as asked.
    expect((await client.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 300 })).text).toBe('cap 300');
    expect(chatBodies(server)).toHaveLength(4); // one refusal, then each call once
    expect(said).toEqual([expect.stringMatching(/capped caps replies at 4096 tokens/)]);
  });

  it("vLLM's context-length refusal is not taken for a cap (the worker's room logic handles it)", async () => {
    server = await startScripted((_req, res) =>
      json(res, 400, { error: { message: "'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's maximum context length is 4096 tokens and your request has 2778 input tokens (8000 > 4096 - 2778).", type: 'BadRequestError', param: null, code: 400 } }),
    );
    client = new EngineClient({ url: server.url, model: 'm' });
    await expect(client.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 8000 })).rejects.toMatchObject({ code: 'CONTEXT_TOO_LONG' });
    expect(chatBodies(server)).toHaveLength(1);
  });
});

describe('an endpoint that takes temperature or top_p, not both (Anthropic-compatible)', () => {
  it('is asked again without top_p; the temperature (the retries rise it) stays', async () => {
    server = await startScripted((_req, res, seen) => {
      const body = JSON.parse(seen.body) as Record<string, unknown>;
      if ('temperature' in body && 'top_p' in body) return json(res, 400, { error: { message: '`temperature` and `top_p` cannot both be specified for this model. Please use only one.', type: 'invalid_request_error', param: null, code: null } });
      return json(res, 200, completion(`t ${String(body.temperature)} p ${String(body.top_p)}`));
    });
    client = new EngineClient({ url: server.url, model: 'claude-x' });
    expect((await client.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 10, temperature: 0.3, topP: 0.9 })).text).toBe('t 0.3 p undefined');
  });
});

describe('an endpoint that refuses temperature 0 (older TGI, servers that sample always)', () => {
  it.each([
    ['TGI 422', 422, { error: 'Input validation error: `temperature` must be strictly positive', error_type: 'validation' }],
    ['a 400 naming the range', 400, { error: { message: 'Invalid params: temperature must be in range (0, +inf)', type: 'invalid_request_error', param: 'temperature', code: null } }],
  ])('%s: asked again at once with the lowest temperature it takes (near greedy), remembered', async (_name, status, refusal) => {
    server = await startScripted((_req, res, seen) => {
      const body = JSON.parse(seen.body) as Record<string, unknown>;
      if (typeof body.temperature === 'number' && body.temperature <= 0) return json(res, status, refusal);
      return json(res, 200, completion(`t ${String(body.temperature)}`));
    });
    client = new EngineClient({ url: server.url, model: 'tgi' });
    const ask = { messages: [{ role: 'user' as const, content: 'Hi' }], maxTokens: 10, temperature: 0 };
    expect((await client.chat(ask)).text).toBe('t 0.01');
    expect((await client.chat(ask)).text).toBe('t 0.01');
    // A temperature the endpoint takes is sent as asked.
    expect((await client.chat({ ...ask, temperature: 0.4 })).text).toBe('t 0.4');
    expect(chatBodies(server).map((b) => b.temperature)).toEqual([0, 0.01, 0.01, 0.4]);
  });
});
