/**
 * A hosted endpoint's content filter (Azure OpenAI and gateways like it) withholds an answer with
 * a 200: `choices: []` with `prompt_filter_results` when the prompt was filtered, finish_reason
 * `content_filter` (no content) when the answer was. Either is CONTENT_FILTERED naming the
 * categories flagged, never ENGINE_ERROR (which the worker retries) or EMPTY_OUTPUT (which it
 * asks again at a higher temperature): the same content is filtered again.
 *
 * The emulator's contentFilter switch over real HTTP; Azure's 400 refusal by a node:http server.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EngineClient, EngineError } from '../../src/engine/client.ts';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { json, startScripted, type Scripted } from './scripted-server.ts';

let emulator: Emulator | undefined;
let server: Scripted | undefined;
let client: EngineClient | undefined;
afterEach(async () => {
  await client?.destroy();
  await emulator?.close();
  await server?.close();
  emulator = server = client = undefined;
});

const ask = (text: string) => ({ messages: [{ role: 'user' as const, content: [{ type: 'text' as const, text }] }], maxTokens: 50 });

describe('an answer a content filter withheld, with a 200', () => {
  it.each([
    ['the prompt filtered: choices [] and prompt_filter_results', 'prompt', false, /200 with no choices.*prompt_filter_results: sexual \(medium\)/],
    ['the answer filtered: finish_reason content_filter, no content', 'output', false, /finish_reason "content_filter", no text.*content_filter_results: violence \(high\)/],
    ['the prompt filtered, sent as an event stream (a proxy that forces streaming)', 'prompt', true, /prompt_filter_results: sexual \(medium\)/],
    ['the answer filtered, sent as an event stream', 'output', true, /content_filter_results: violence \(high\)/],
  ] as const)('%s: CONTENT_FILTERED naming the category flagged', async (_what, on, forceStream, said) => {
    emulator = await startEmulator({ speed: 50, outputTokensMin: 5, outputTokensMax: 10, forceStream, contentFilter: { matchText: 'forbidden words', on } });
    client = new EngineClient({ url: emulator.url });
    const err = await client.chat(ask('Some forbidden words here.')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ code: 'CONTENT_FILTERED', status: 200, message: expect.stringMatching(said) });
    expect(emulator.stats().filtered).toBe(1);
    // Other requests are answered as usual.
    expect((await client.chat(ask('A harmless page.'))).text).toMatch(/^\[emulated reply by /);
  });

  it("finish_reason content_filter with some text: CONTENT_FILTERED too (the text is partial), not an answer", async () => {
    server = await startScripted((_req, res) =>
      json(res, 200, { id: 'x', object: 'chat.completion', model: 'gpt-4o', choices: [{ index: 0, message: { role: 'assistant', content: 'The first half of' }, finish_reason: 'content_filter', content_filter_results: { self_harm: { filtered: true, severity: 'medium' }, hate: { filtered: false, severity: 'safe' } } }] }),
    );
    client = new EngineClient({ url: server.url, model: 'gpt-4o' });
    await expect(client.chat(ask('Hi'))).rejects.toMatchObject({ code: 'CONTENT_FILTERED', message: expect.stringMatching(/17 characters it had are partial.*self_harm \(medium\)/) });
  });

  it("Azure's 400 for a filtered prompt is CONTENT_FILTERED, not a plain BAD_REQUEST", async () => {
    server = await startScripted((_req, res) =>
      json(res, 400, { error: { message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.", type: null, param: 'prompt', code: 'content_filter', status: 400, innererror: { code: 'ResponsibleAIPolicyViolation', content_filter_result: { violence: { filtered: true, severity: 'medium' } } } } }),
    );
    client = new EngineClient({ url: server.url, model: 'gpt-4o' });
    await expect(client.chat(ask('Hi'))).rejects.toMatchObject({ code: 'CONTENT_FILTERED', status: 400 });
    expect(server.seen).toHaveLength(1);
  });
});
