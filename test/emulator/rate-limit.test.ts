/**
 * Rate limits like a paid endpoint (rateLimit), over real HTTP: 429 rate_limit_exceeded with
 * Retry-After and x-ratelimit-* headers past rpm or tpm (prompt + max_tokens counted on arrival),
 * per API key, "Request too large" without Retry-After, and per-window stats that show whether a
 * client kept within the limits.
 */
import { describe, expect, it } from 'vitest';
import { optionsFromFlags } from '../../src/emulator/flags.ts';
import { formatReset } from '../../src/emulator/rate-limit.ts';
import { call, chatBody, emulatorsForFile } from './helpers.ts';

const { agent, emulator } = emulatorsForFile();

const post = (url: string, body: unknown, key?: string) =>
  call(agent, `${url}/v1/chat/completions`, { body, headers: key ? { authorization: `Bearer ${key}` } : {} });
const small = (text: string, maxTokens = 5) => chatBody(text, [], { max_tokens: maxTokens });

describe('requests per window', () => {
  it('past rpm: 429 with Retry-After, retry-after-ms and x-ratelimit-* headers; the next window accepts again', async () => {
    const emu = await emulator({ speed: 100, rateLimit: { rpm: 3, windowMs: 1500 } });
    const ok = [];
    for (let i = 0; i < 3; i++) ok.push(await post(emu.url, small(`r${i}`)));
    expect(ok.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(ok.map((r) => r.headers['x-ratelimit-remaining-requests'])).toEqual(['2', '1', '0']);
    expect(ok[0]?.headers['x-ratelimit-limit-requests']).toBe('3');
    expect(ok[0]?.headers['x-ratelimit-reset-requests']).toMatch(/^(\d+ms|1(\.\d+)?s)$/);
    expect(ok[0]?.headers['x-ratelimit-limit-tokens']).toBeUndefined();

    const refused = await post(emu.url, small('r3'));
    expect(refused.status).toBe(429);
    expect(refused.json.error).toMatchObject({ type: 'rate_limit_exceeded', code: 'rate_limit_exceeded', param: null });
    expect(refused.json.error.message).toMatch(/^Rate limit reached for docbatch\/emulated-vl on requests per min \(RPM\): Limit 3, Used 3, Requested 1\. Please try again in \d/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(2);
    const waitMs = Number(refused.headers['retry-after-ms']);
    expect(waitMs).toBeGreaterThan(0);
    expect(waitMs).toBeLessThanOrEqual(1500);
    expect(refused.headers['x-ratelimit-remaining-requests']).toBe('0');

    await new Promise((r) => setTimeout(r, waitMs + 20)); // what Retry-After says, not a guess
    const later = await post(emu.url, small('r4'));
    expect(later.status).toBe(200);
    expect(later.headers['x-ratelimit-remaining-requests']).toBe('2');

    const s = emu.stats();
    expect(s.errors.rate_limited).toBe(1);
    expect(s.rateLimitWindows.map((w) => [w.acceptedRequests, w.refusedRequests])).toEqual([
      [3, 1],
      [1, 0],
    ]);
    const [w1, w2] = s.rateLimitWindows;
    expect(w2!.start - w1!.start).toBe(1500);
    expect(w1).toMatchObject({ apiKey: '', model: 'docbatch/emulated-vl', rpm: 3, tpm: null, windowMs: 1500 });
  });

  it('counts per API key (bearer token) and model', async () => {
    const emu = await emulator({ speed: 100, rateLimit: { rpm: 1 } });
    expect((await post(emu.url, small('a'), 'key-1')).status).toBe(200);
    expect((await post(emu.url, small('b'), 'key-2')).status).toBe(200);
    expect((await post(emu.url, small('c'))).status).toBe(200);
    expect((await post(emu.url, small('d'), 'key-1')).status).toBe(429);
    const byKey = Object.fromEntries(emu.stats().rateLimitWindows.map((w) => [w.apiKey, [w.acceptedRequests, w.refusedRequests]]));
    expect(byKey).toEqual({ '': [1, 0], 'key-1': [1, 1], 'key-2': [1, 0] });
  });
});

describe('tokens per window', () => {
  it('counts prompt + max_tokens on arrival; a request larger than tpm alone is "too large", without Retry-After', async () => {
    const emu = await emulator({ speed: 100, rateLimit: { tpm: 1000 } });
    const probe = await call(agent, `${emu.url}/tokenize`, { body: { messages: small('tokens').messages } });
    const prompt = probe.json.count as number;
    const first = await post(emu.url, small('tokens', 400 - prompt));
    expect(first.status).toBe(200);
    // Counted as max_tokens, not as what was generated.
    expect(first.json.usage.completion_tokens).toBeLessThan(400 - prompt);
    expect(first.headers).toMatchObject({ 'x-ratelimit-limit-tokens': '1000', 'x-ratelimit-remaining-tokens': '600' });
    expect((await post(emu.url, small('tokens', 400 - prompt))).headers['x-ratelimit-remaining-tokens']).toBe('200');

    const over = await post(emu.url, small('tokens', 400 - prompt));
    expect(over.status).toBe(429);
    expect(over.json.error.message).toMatch(/on tokens per min \(TPM\): Limit 1000, Used 800, Requested 400\. Please try again in/);
    expect(over.headers['retry-after']).toBeDefined();

    const huge = await post(emu.url, small('tokens', 2000));
    expect(huge.status).toBe(429);
    expect(huge.json.error.message).toBe(`Request too large for docbatch/emulated-vl on tokens per min (TPM): Limit 1000, Requested ${prompt + 2000}. The input or output tokens must be reduced in order to run successfully.`);
    expect(huge.headers['retry-after']).toBeUndefined();
    expect(emu.stats().rateLimitWindows[0]).toMatchObject({ acceptedRequests: 2, acceptedTokens: 800, refusedRequests: 2, refusedTokens: 400 + prompt + 2000 });
  });
});

describe('a client that honours Retry-After', () => {
  it('stays within the limits, and the per-window stats show it', async () => {
    const rpm = 8;
    const windowMs = 800;
    const emu = await emulator({ speed: 100, rateLimit: { rpm, tpm: 100_000, windowMs } });
    const until = Date.now() + 3.5 * windowMs;
    let refusals = 0;
    const worker = async (w: number): Promise<void> => {
      // At least four windows seen (a loaded CI machine once starved the clients through the whole
      // 3.5 windows of wall clock: one window recorded), within a cap.
      const enough = () => Date.now() >= until && emu.stats().rateLimitWindows.length >= 4;
      for (let i = 0; !enough() && Date.now() < until + 30_000; i++) {
        const r = await post(emu.url, small(`worker ${w} request ${i}`));
        if (r.status === 429) {
          refusals++;
          await new Promise((resolve) => setTimeout(resolve, Number(r.headers['retry-after-ms'])));
        } else expect(r.status).toBe(200);
      }
    };
    await Promise.all([0, 1, 2].map(worker));
    const windows = emu.stats().rateLimitWindows;
    expect(windows.length).toBeGreaterThanOrEqual(3);
    for (const w of windows) expect(w.acceptedRequests).toBeLessThanOrEqual(rpm);
    // Whole windows were used to within 5% (the last one may be cut by the deadline).
    for (const w of windows.slice(0, -1)) expect(w.acceptedRequests).toBeGreaterThanOrEqual(0.95 * rpm);
    expect(windows.reduce((n, w) => n + w.refusedRequests, 0)).toBe(refusals);
  });
});

describe('options', () => {
  it('are validated with a TypeError naming the option, change at run time, and have flags', async () => {
    const emu = await emulator({ speed: 100 });
    expect(() => emu.setFaults({ rateLimit: {} })).toThrow(/`rateLimit` must be null or have `rpm` or `tpm`/);
    expect(() => emu.setFaults({ rateLimit: { rpm: 0 } })).toThrow(/`rateLimit.rpm` must be an integer >= 1/);
    expect(() => emu.setFaults({ rateLimit: { tpm: 1.5 } })).toThrow(/`rateLimit.tpm`/);
    expect(() => emu.setFaults({ rateLimit: { rpm: 1, windowMs: 5 } })).toThrow(/`rateLimit.windowMs` must be an integer >= 100/);
    expect(() => emu.setFaults({ rateLimit: { rpm: 1, perDay: 3 } as never })).toThrow(/unknown key `perDay`/);
    expect((await post(emu.url, small('free'))).headers['x-ratelimit-limit-requests']).toBeUndefined();
    const set = await call(agent, `${emu.url}/emulator/faults`, { body: { rateLimit: { rpm: 1 } } });
    expect(set.json.rateLimit).toEqual({ rpm: 1 });
    expect((await post(emu.url, small('one'))).status).toBe(200);
    expect((await post(emu.url, small('two'))).status).toBe(429);
    emu.setFaults({ rateLimit: null });
    expect((await post(emu.url, small('three'))).status).toBe(200);

    expect(optionsFromFlags({ rpm: '60', tpm: '90000', 'rate-window-ms': '1000' }).rateLimit).toEqual({ rpm: 60, tpm: 90000, windowMs: 1000 });
    expect(() => optionsFromFlags({ 'rate-window-ms': '1000' })).toThrow(/`rateLimit` must be null or have `rpm` or `tpm`/);
  });

  it('reset durations read as OpenAI writes them', () => {
    expect([formatReset(17.2), formatReset(1500), formatReset(59_999), formatReset(360_000), formatReset(61_500)]).toEqual(['18ms', '1.5s', '59.999s', '6m0s', '1m1.5s']);
  });
});
