/**
 * Answers that fail validation on first sight (cutoff, loop, invalidJson): the first answer to a
 * content is flawed for a share of contents picked by their hash, a later request with the same
 * content (whatever its sampling parameters) is answered well, and every flaw is counted.
 */
import { describe, expect, it } from 'vitest';
import { call, chatBody, emulatorsForFile } from './helpers.ts';

const { agent, emulator } = emulatorsForFile();

const SCHEMA = { type: 'object', properties: { invoice_number: { type: 'string' }, customer: { type: 'string' }, total: { type: 'number' } }, required: ['invoice_number', 'customer', 'total'] };
const JSON_ASK = { response_format: { type: 'json_schema', json_schema: { name: 'invoice', schema: SCHEMA } } };
const TEXT = 'Invoice number: INV-7\nCustomer: Ada Lovelace\nTotal: 12.50';
// Free-text replies are 40-80 tokens; a flawed one runs to max_tokens (300).
const SHORT = { speed: 100, outputTokensMin: 40, outputTokensMax: 80 };

const post = (url: string, body: unknown) => call(agent, `${url}/v1/chat/completions`, { body });
const content = (r: { json: any }): string => r.json.choices[0].message.content;

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

describe('cutoff', () => {
  it('the first answer runs to max_tokens, cut inside the JSON; the same content again is answered well', async () => {
    const emu = await emulator({ ...SHORT, cutoff: 1 });
    const first = await post(emu.url, chatBody(TEXT, [], { ...JSON_ASK, max_tokens: 120 }));
    expect(first.json.choices[0].finish_reason).toBe('length');
    expect(first.json.usage.completion_tokens).toBe(120);
    expect(parses(content(first))).toBe(false);
    // It went astray inside the last string value, after the fields before it.
    expect(content(first)).toMatch(/^\{"invoice_number": "INV-7", "customer": "Ada Lovelace \w+ \w+/);

    // Different sampling parameters and max_tokens: still the same content, now seen.
    const again = await post(emu.url, chatBody(TEXT, [], { ...JSON_ASK, max_tokens: 200, temperature: 0.7, seed: 3 }));
    expect(again.json.choices[0].finish_reason).toBe('stop');
    expect(JSON.parse(content(again))).toEqual({ invoice_number: 'INV-7', customer: 'Ada Lovelace', total: 12.5 });

    const s = emu.stats();
    expect(s.flaws).toEqual({ cutoff: 1, loop: 0, invalidJson: 0 });
    // Only the complete answer's fields count.
    expect(s.fields).toEqual({ extracted: 3, altered: 0, filled: 0 });
    expect(emu.answers().map((a) => [a.flaw, a.finishReason])).toEqual([
      ['cutoff', 'length'],
      [null, 'stop'],
    ]);
  });

  it('a free-text answer runs to max_tokens too', async () => {
    const emu = await emulator({ ...SHORT, cutoff: 1 });
    const first = await post(emu.url, chatBody('a page of text', [], { max_tokens: 300 }));
    expect(first.json.choices[0].finish_reason).toBe('length');
    expect(first.json.usage.completion_tokens).toBe(300);
    expect(content(first)).toMatch(/^\[emulated reply by docbatch\/emulated-vl\]\n/);
    const again = await post(emu.url, chatBody('a page of text', [], { max_tokens: 300 }));
    expect(again.json.choices[0].finish_reason).toBe('stop');
    expect(again.json.usage.completion_tokens).toBeLessThanOrEqual(80);
    // The good answer is where the flawed one started.
    expect(content(first).startsWith(content(again))).toBe(true);
  });
});

describe('loop', () => {
  it('one short phrase repeated until max_tokens, finish_reason length; then a good answer', async () => {
    const emu = await emulator({ ...SHORT, loop: 1 });
    const first = await post(emu.url, chatBody(TEXT, [], { ...JSON_ASK, max_tokens: 150 }));
    expect(first.json.choices[0].finish_reason).toBe('length');
    expect(first.json.usage.completion_tokens).toBe(150);
    const tail = content(first).split(' ').slice(-60);
    // A period of 2-4 words covers the whole tail.
    const period = [2, 3, 4].find((p) => tail.every((w, i) => i < p || w === tail[i - p]));
    expect(period).toBeDefined();
    expect(emu.stats().flaws.loop).toBe(1);
    const again = await post(emu.url, chatBody(TEXT, [], { ...JSON_ASK, max_tokens: 150 }));
    expect(parses(content(again))).toBe(true);
  });
});

describe('invalidJson', () => {
  it('broken JSON with finish_reason stop when JSON was asked; free text is left alone and not counted', async () => {
    const emu = await emulator({ ...SHORT, invalidJson: 1 });
    const texts = Array.from({ length: 9 }, (_, i) => `${TEXT}\nPage: ${i}`);
    const first = await Promise.all(texts.map((t) => post(emu.url, chatBody(t, [], JSON_ASK))));
    for (const r of first) {
      expect(r.json.choices[0].finish_reason).toBe('stop');
      expect(parses(content(r))).toBe(false);
      // Not just wrapped: it stays broken without a Markdown fence.
      expect(parses(content(r).replace(/^```(?:json)?\n?|\n?```$/g, ''))).toBe(false);
    }
    const again = await Promise.all(texts.map((t) => post(emu.url, chatBody(t, [], JSON_ASK))));
    for (const r of again) expect(JSON.parse(content(r))).toMatchObject({ invoice_number: 'INV-7' });

    const free = await post(emu.url, chatBody('free text, never JSON', [], { max_tokens: 300 }));
    expect(free.json.choices[0].finish_reason).toBe('stop');
    expect(emu.stats().flaws).toEqual({ cutoff: 0, loop: 0, invalidJson: 9 });
  });
});

describe('shares', () => {
  it('pick a share of contents by their hash: the same ones on every emulator, each once', async () => {
    const options = { ...SHORT, cutoff: 0.2, loop: 0.1, invalidJson: 0.1 };
    const a = await emulator(options);
    const b = await emulator(options);
    const bodies = Array.from({ length: 200 }, (_, i) => chatBody(`Invoice number: ${i}\nCustomer: C${i}\nTotal: ${i}.5`, [], { ...JSON_ASK, max_tokens: 40 }));
    const flawsOf = async (url: string) => {
      const replies = await Promise.all(bodies.map((body) => post(url, body)));
      return replies.map((r) => (r.json.choices[0].finish_reason === 'length' ? 'length' : parses(content(r)) ? 'ok' : 'broken'));
    };
    const onA = await flawsOf(a.url);
    expect(await flawsOf(b.url)).toEqual(onA);
    const s = a.stats();
    // 200 contents: 40 / 20 / 20 expected; the hash is uniform (4 standard deviations allowed).
    expect(s.flaws.cutoff).toBeGreaterThan(40 - 23);
    expect(s.flaws.cutoff).toBeLessThan(40 + 23);
    expect(s.flaws.loop).toBeGreaterThan(20 - 17);
    expect(s.flaws.loop).toBeLessThan(20 + 17);
    expect(s.flaws.invalidJson).toBeGreaterThan(20 - 17);
    expect(s.flaws.invalidJson).toBeLessThan(20 + 17);
    expect(onA.filter((x) => x === 'length')).toHaveLength(s.flaws.cutoff + s.flaws.loop);
    expect(onA.filter((x) => x === 'broken')).toHaveLength(s.flaws.invalidJson);
    // Second time round every content is answered well.
    expect((await flawsOf(a.url)).every((x) => x === 'ok')).toBe(true);
    expect(a.stats().flaws).toEqual(s.flaws);
  });

  it('change at run time (setFaults and POST /emulator/faults); bad values throw a TypeError naming the option', async () => {
    const emu = await emulator(SHORT);
    expect((await post(emu.url, chatBody('one', [], { max_tokens: 300 }))).json.choices[0].finish_reason).toBe('stop');
    emu.setFaults({ cutoff: 1 });
    expect((await post(emu.url, chatBody('two', [], { max_tokens: 300 }))).json.choices[0].finish_reason).toBe('length');
    const set = await call(agent, `${emu.url}/emulator/faults`, { body: { cutoff: 0, loop: 1 } });
    expect(set.json).toMatchObject({ cutoff: 0, loop: 1 });
    expect((await post(emu.url, chatBody('three', [], { max_tokens: 300 }))).json.choices[0].finish_reason).toBe('length');
    expect(emu.stats().flaws).toEqual({ cutoff: 1, loop: 1, invalidJson: 0 });

    expect(() => emu.setFaults({ cutoff: 1.5 })).toThrow(/`cutoff` must be a share between 0 and 1; got 1.5/);
    expect(() => emu.setFaults({ invalidJson: -0.1 })).toThrow(/`invalidJson`/);
    expect(() => emu.setFaults({ cutoff: 0.6, loop: 0.6 })).toThrow(/`cutoff` \+ `loop` \+ `invalidJson` must add up to at most 1/);
    const bad = await call(agent, `${emu.url}/emulator/faults`, { body: { loop: 'often' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/`loop`/);
    expect(emu.faults()).toMatchObject({ cutoff: 0, loop: 1 });
  });
});
