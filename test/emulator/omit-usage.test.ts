/**
 * The omitUsage fault over real HTTP: answers without their token counts, as some servers and
 * gateways send them — no `usage` key, `"usage": null`, or its counts null — for a share of
 * requests chosen by their X-Request-Id (else their content), the same request always alike;
 * counted in stats, set by flags or at run time, validated.
 */
import { describe, expect, it } from 'vitest';
import { optionsFromFlags } from '../../src/emulator/flags.ts';
import { call, chatBody, emulatorsForFile } from './helpers.ts';

const { agent, emulator } = emulatorsForFile();

const post = (url: string, body: unknown, id?: string) => call(agent, `${url}/v1/chat/completions`, { body, ...(id ? { headers: { 'x-request-id': id } } : {}) });
const question = (n: number) => chatBody(`Question ${n}?`, [], { max_tokens: 10 });

describe('omitUsage', () => {
  it('absent, null and null-fields: the answer is whole but for its token counts', async () => {
    const emu = await emulator({ speed: 100 });
    const full = await post(emu.url, question(1));
    expect(full.json.usage).toMatchObject({ prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) });

    emu.setFaults({ omitUsage: 'absent' });
    const absent = await post(emu.url, question(1));
    expect(absent.status).toBe(200);
    expect(absent.json.choices[0].message.content).toBe(full.json.choices[0].message.content);
    expect('usage' in absent.json).toBe(false);

    emu.setFaults({ omitUsage: 'null' });
    const nulled = await post(emu.url, question(1));
    expect(nulled.json.usage).toBeNull();

    emu.setFaults({ omitUsage: 'null-fields' });
    const fields = await post(emu.url, question(1));
    expect(fields.json.usage).toMatchObject({ prompt_tokens: null, completion_tokens: null, total_tokens: null });

    emu.setFaults({ omitUsage: null });
    expect((await post(emu.url, question(1))).json.usage).toEqual(full.json.usage);
    expect(emu.stats()).toMatchObject({ completed: 5, usageOmitted: 3 });
  });

  it('a share of requests, chosen by X-Request-Id: the same request always alike, about that share of all', async () => {
    const emu = await emulator({ speed: 200, omitUsage: 'null', omitUsageShare: 0.3 });
    const ids = Array.from({ length: 200 }, (_, i) => `req-${i}`);
    const first = await Promise.all(ids.map((id, i) => post(emu.url, question(i), id)));
    const again = await Promise.all(ids.map((id, i) => post(emu.url, question(i + 1000), id)));
    const omitted = first.map((r) => r.json.usage === null);
    expect(again.map((r) => r.json.usage === null)).toEqual(omitted);
    const share = omitted.filter(Boolean).length / ids.length;
    // 200 draws at 0.3: four standard deviations either side.
    expect(share).toBeGreaterThan(0.3 - 4 * Math.sqrt((0.3 * 0.7) / 200));
    expect(share).toBeLessThan(0.3 + 4 * Math.sqrt((0.3 * 0.7) / 200));
    expect(emu.stats().usageOmitted).toBe(2 * omitted.filter(Boolean).length);
    // Without X-Request-Id the content decides: the same content, the same answer.
    const byContent = await Promise.all(Array.from({ length: 20 }, () => post(emu.url, question(7))));
    expect(new Set(byContent.map((r) => r.json.usage === null)).size).toBe(1);
  });

  it('a stream asking for usage gets no usage chunk (absent), or one with usage null', async () => {
    const emu = await emulator({ speed: 100, omitUsage: 'absent' });
    const streamed = async () => {
      const r = await call(agent, `${emu.url}/v1/chat/completions`, { body: { ...question(2), stream: true, stream_options: { include_usage: true } } });
      return r.text.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>);
    };
    expect((await streamed()).some((e) => 'usage' in e)).toBe(false);
    emu.setFaults({ omitUsage: 'null' });
    expect((await streamed()).filter((e) => 'usage' in e).map((e) => e.usage)).toEqual([null]);
  });

  it('has flags, and bad values are refused naming the option', async () => {
    expect(optionsFromFlags({ 'omit-usage': 'null-fields', 'omit-usage-share': '0.25' })).toMatchObject({ omitUsage: 'null-fields', omitUsageShare: 0.25 });
    expect(optionsFromFlags({})).toMatchObject({ omitUsage: null, omitUsageShare: 1 });
    expect(() => optionsFromFlags({ 'omit-usage': 'zero' })).toThrow(/--omit-usage must be one of absent, null, null-fields/);
    const emu = await emulator({ speed: 100 });
    expect(() => emu.setFaults({ omitUsage: 'zero' as never })).toThrow(/`omitUsage` must be null or one of absent, null, null-fields/);
    expect(() => emu.setFaults({ omitUsageShare: 1.5 })).toThrow(/`omitUsageShare` must be a share between 0 and 1/);
    const set = await call(agent, `${emu.url}/emulator/faults`, { body: { omitUsage: 'absent', omitUsageShare: 0 } });
    expect(set.json).toMatchObject({ omitUsage: 'absent', omitUsageShare: 0 });
    expect('usage' in (await post(emu.url, question(3))).json).toBe(true);
  });
});
