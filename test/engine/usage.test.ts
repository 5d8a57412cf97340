/**
 * Token usage as the engine client reads it: a count the server did not report (no `usage`,
 * `"usage": null`, the count null or not a count) is null, unknown, never 0. Read over real HTTP
 * from a scripted node:http server (every shape) and from the emulator (its omitUsage modes);
 * then the shared rules of src/usage.ts that outputs follow.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineClient, EngineError } from '../../src/engine/client.ts';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { addCounts, formatTokens, lacksUsage, tokensNote, totalJson, usageJson, usageKeys } from '../../src/usage.ts';
import { completion, json, startScripted, type Scripted } from './scripted-server.ts';

const USER = [{ role: 'user' as const, content: 'hello' }];

/** What the scripted server answers next: a chat completion body with this `usage` part. */
let nextBody: Record<string, unknown> = completion('hi');
let server: Scripted;
let client: EngineClient;
beforeAll(async () => {
  server = await startScripted((_req, res) => json(res, 200, nextBody));
  client = new EngineClient({ url: server.url, model: 'test-model' });
});
afterAll(async () => {
  await client.close();
  await server.close();
});

async function usageFor(body: Record<string, unknown>) {
  nextBody = body;
  return (await client.chat({ messages: USER, maxTokens: 8 })).usage;
}

describe('the client reads usage', () => {
  it('as sent when the server reports it', async () => {
    expect(await usageFor(completion('hi'))).toEqual({ promptTokens: 12, completionTokens: 3 });
    expect(await usageFor(completion('hi', { usage: { prompt_tokens: 0, completion_tokens: 0 } }))).toEqual({ promptTokens: 0, completionTokens: 0 });
  });

  it('as unknown (null), not 0, when the server sends no usage, usage null, or counts null', async () => {
    const { usage: _dropped, ...noUsage } = completion('hi');
    expect(await usageFor(noUsage)).toEqual({ promptTokens: null, completionTokens: null });
    expect(await usageFor(completion('hi', { usage: null }))).toEqual({ promptTokens: null, completionTokens: null });
    expect(await usageFor(completion('hi', { usage: { prompt_tokens: null, completion_tokens: null, total_tokens: null } }))).toEqual({ promptTokens: null, completionTokens: null });
    expect(await usageFor(completion('hi', { usage: {} }))).toEqual({ promptTokens: null, completionTokens: null });
  });

  it('count by count: one reported, the other not; a count that is not a count is not reported', async () => {
    expect(await usageFor(completion('hi', { usage: { prompt_tokens: 40, completion_tokens: null } }))).toEqual({ promptTokens: 40, completionTokens: null });
    expect(await usageFor(completion('hi', { usage: { completion_tokens: 7 } }))).toEqual({ promptTokens: null, completionTokens: 7 });
    expect(await usageFor(completion('hi', { usage: { prompt_tokens: '40', completion_tokens: -1 } }))).toEqual({ promptTokens: null, completionTokens: null });
    expect(await usageFor(completion('hi', { usage: 'n/a' }))).toEqual({ promptTokens: null, completionTokens: null });
  });

  it('an answer with no text (EMPTY_OUTPUT) carries the usage it came with, null where none', async () => {
    const empty = (usage: unknown) => ({ ...completion(''), usage });
    nextBody = empty({ prompt_tokens: 9, completion_tokens: 0 });
    const err = (await client.chat({ messages: USER, maxTokens: 8 }).catch((e: unknown) => e)) as EngineError;
    expect(err).toBeInstanceOf(EngineError);
    expect(err.code).toBe('EMPTY_OUTPUT');
    expect(err.usage).toEqual({ promptTokens: 9, completionTokens: 0 });
    nextBody = empty(null);
    expect(((await client.chat({ messages: USER, maxTokens: 8 }).catch((e: unknown) => e)) as EngineError).usage).toEqual({ promptTokens: null, completionTokens: null });
  });
});

describe('the client against the emulator omitting usage', () => {
  let emu: Emulator;
  let emuClient: EngineClient;
  beforeAll(async () => {
    emu = await startEmulator({ speed: 100, outputTokensMin: 5, outputTokensMax: 10 });
    emuClient = new EngineClient({ url: emu.url });
  });
  afterAll(async () => {
    await emuClient.close();
    await emu.close();
  });

  it.each(['absent', 'null', 'null-fields'] as const)('%s: both counts null; the text is there', async (mode) => {
    emu.setFaults({ omitUsage: mode });
    const result = await emuClient.chat({ messages: USER, maxTokens: 16 });
    expect(result.text.length).toBeGreaterThan(0);
    expect(result.usage).toEqual({ promptTokens: null, completionTokens: null });
  });

  it('usage sent again: numbers again', async () => {
    emu.setFaults({ omitUsage: null });
    const result = await emuClient.chat({ messages: USER, maxTokens: 16 });
    expect(result.usage.promptTokens).toBeGreaterThan(0);
    expect(result.usage.completionTokens).toBeGreaterThan(0);
  });
});

describe('the rules outputs follow (src/usage.ts)', () => {
  it("a unit's counts over its answers are unknown once one answer's is", () => {
    expect(addCounts({ promptTokens: 10, completionTokens: 5 }, { promptTokens: 20, completionTokens: 7 })).toEqual({ promptTokens: 30, completionTokens: 12 });
    expect(addCounts({ promptTokens: 10, completionTokens: 5 }, { promptTokens: null, completionTokens: 7 })).toEqual({ promptTokens: null, completionTokens: 12 });
    expect(lacksUsage({ promptTokens: 1, completionTokens: null })).toBe(true);
    expect(lacksUsage({ promptTokens: 1, completionTokens: 2 })).toBe(false);
    // A failure before any answer has no counts at all: nothing unknown.
    expect(lacksUsage({})).toBe(false);
  });

  it('an X.jsonl usage is null when nothing was reported, else the counts with null where one was not', () => {
    expect(usageJson({ promptTokens: null, completionTokens: null })).toBeNull();
    expect(usageJson({ promptTokens: 12, completionTokens: null })).toEqual({ prompt_tokens: 12, completion_tokens: null });
    expect(usageJson({ promptTokens: 12, completionTokens: 3 })).toEqual({ prompt_tokens: 12, completion_tokens: 3 });
  });

  it('totals: exact, a lower bound (≥, a note), or unknown (?, null)', () => {
    expect([formatTokens(1234, 0), formatTokens(1234, 2), formatTokens(0, 2), formatTokens(0, 0)]).toEqual(['1234', '≥1234', '?', '0']);
    expect([totalJson(1234, 0), totalJson(1234, 2), totalJson(0, 2), totalJson(0, 0)]).toEqual([1234, 1234, null, 0]);
    expect(tokensNote(0)).toBeNull();
    expect(tokensNote(1)).toMatch(/no token usage for 1 unit: .*lower bound/);
    expect(usageKeys(0)).toEqual({ units_without_usage: 0 });
    expect(usageKeys(3)).toEqual({ units_without_usage: 3, tokens_note: tokensNote(3) });
  });
});
