/**
 * Model traits over real HTTP: a model that gets a share of extracted fields wrong (alterFields:
 * deterministic per model, content and field, counted and listed so a test knows exactly which
 * answers were right), and a text-only model that refuses image parts with vLLM's 400.
 */
import { describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/index.ts';
import { call, chatBody, dataUrl, emulatorsForFile, makeImage } from './helpers.ts';

const { agent, emulator } = emulatorsForFile();

const SCHEMA = {
  type: 'object',
  properties: {
    invoice_number: { type: 'string' },
    customer: { type: 'string' },
    total: { type: 'number' },
    quantity: { type: 'integer' },
    due: { type: 'string', format: 'date' },
    paid: { type: 'boolean' },
    status: { enum: ['open', 'overdue', 'paid'] },
  },
  required: ['invoice_number', 'customer', 'total', 'quantity', 'due', 'paid', 'status'],
};
const JSON_ASK = { response_format: { type: 'json_schema', json_schema: { name: 'invoice', schema: SCHEMA } }, max_tokens: 200 };

/** Document i and what its fields really are. */
function doc(i: number): { text: string; truth: Record<string, unknown> } {
  const truth = {
    invoice_number: `INV-${1000 + i}`,
    customer: ['Ada Lovelace', 'Grace Hopper', 'Alan Turing'][i % 3],
    total: 100 + i + 0.25,
    quantity: 3 + (i % 7),
    due: `2024-0${1 + (i % 9)}-1${i % 10}`,
    paid: i % 2 === 0,
    status: ['open', 'overdue', 'paid'][i % 3],
  };
  const text = Object.entries(truth)
    .map(([k, v]) => `${k.replace('_', ' ')}: ${typeof v === 'boolean' ? (v ? 'yes' : 'no') : v}`)
    .join('\n');
  return { text, truth };
}

async function answers(emu: Emulator, n: number): Promise<Record<string, unknown>[]> {
  const replies = await Promise.all(Array.from({ length: n }, (_, i) => call(agent, `${emu.url}/v1/chat/completions`, { body: chatBody(doc(i).text, [], JSON_ASK) })));
  return replies.map((r) => JSON.parse(r.json.choices[0].message.content));
}

describe('alterFields', () => {
  it('0: every field is what the text says', async () => {
    const emu = await emulator({ speed: 100 });
    const got = await answers(emu, 6);
    got.forEach((value, i) => expect(value).toEqual(doc(i).truth));
    expect(emu.stats().fields).toEqual({ extracted: 42, altered: 0, filled: 0 });
  });

  it('1: every field read is changed the way a reader errs, and still fits its schema', async () => {
    const emu = await emulator({ speed: 100, alterFields: 1 });
    const got = await answers(emu, 6);
    got.forEach((value, i) => {
      const truth = doc(i).truth;
      for (const [k, v] of Object.entries(value)) expect(v, k).not.toEqual(truth[k]);
      expect(typeof value.total).toBe('number');
      expect(Number.isInteger(value.quantity)).toBe(true);
      expect(value.due).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      // A day off, not an impossible date.
      expect(Math.abs(Date.parse(value.due as string) - Date.parse(truth.due as string))).toBe(86_400_000);
      expect(['open', 'overdue', 'paid']).toContain(value.status);
      expect(value.paid).toBe(!truth.paid);
      // One digit changed in the invoice number; one word in the name.
      const a = String(value.invoice_number);
      const b = String(truth.invoice_number);
      expect(a).toHaveLength(b.length);
      expect([...a].filter((c, j) => c !== b[j])).toHaveLength(1);
      const words = String(value.customer).split(' ');
      const trueWords = String(truth.customer).split(' ');
      expect(words.filter((w, j) => w !== trueWords[j])).toHaveLength(1);
    });
    expect(emu.stats().fields).toEqual({ extracted: 42, altered: 42, filled: 0 });
  });

  it('a share: the ledger says exactly which fields are wrong, the same on every run of the same model', async () => {
    const model = 'test/model-b';
    const emu = await emulator({ speed: 100, model, alterFields: 0.3 });
    const twin = await emulator({ speed: 100, model, alterFields: 0.3 });
    const other = await emulator({ speed: 100, model: 'test/model-c', alterFields: 0.3 });
    const n = 60;
    const got = await answers(emu, n);
    const wrong = new Set<string>();
    got.forEach((value, i) => {
      for (const [k, v] of Object.entries(value)) if (JSON.stringify(v) !== JSON.stringify(doc(i).truth[k])) wrong.add(`${i}.${k}`);
    });
    const s = emu.stats().fields;
    expect(s.extracted).toBe(n * 7);
    expect(s.altered).toBe(wrong.size);
    // 420 fields at 0.3: 126 expected (4 standard deviations allowed).
    expect(s.altered).toBeGreaterThan(126 - 38);
    expect(s.altered).toBeLessThan(126 + 38);

    // The ledger, joined to the requests by response id, names the same fields.
    const byId = new Map(emu.answers().map((a) => [a.id, a]));
    expect(byId.size).toBe(n);
    const ledgerAltered = emu.answers().flatMap((a) => (a.fields ?? []).filter((f) => f.altered).map((f) => ({ f, a })));
    expect(ledgerAltered).toHaveLength(wrong.size);
    expect((await call(agent, `${emu.url}/emulator/answers`)).json).toEqual(emu.answers());
    for (const { f } of ledgerAltered) expect(f.read).not.toEqual(f.value);

    // A model's mistakes are its own: the same ones every time, others for another model.
    expect(await answers(twin, n)).toEqual(got);
    expect(await answers(emu, n)).toEqual(got);
    expect(await answers(other, n)).not.toEqual(got);
  });

  it('changes at run time; a bad share throws a TypeError naming alterFields', async () => {
    const emu = await emulator({ speed: 100 });
    expect(() => emu.setFaults({ alterFields: 2 })).toThrow(/`alterFields` must be a share between 0 and 1/);
    emu.setFaults({ alterFields: 1 });
    const [value] = await answers(emu, 1);
    expect(value?.invoice_number).not.toBe(doc(0).truth.invoice_number);
  });
});

describe('a text-only model (acceptsImages: false)', () => {
  it("answers an image part with vLLM's 400 and serves text", async () => {
    const emu = await emulator({ speed: 100, model: 'Qwen/Qwen3-8B', acceptsImages: false });
    const img = dataUrl(await makeImage(64, 64));
    const r = await call(agent, `${emu.url}/v1/chat/completions`, { body: chatBody('read this', [img], { max_tokens: 20 }) });
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ error: { message: 'Qwen/Qwen3-8B is not a multimodal model', type: 'BadRequestError', param: null, code: 400 } });
    // Before decoding: even an image that would not decode gets this answer.
    const broken = await call(agent, `${emu.url}/v1/chat/completions`, { body: chatBody('x', ['data:image/png;base64,AAAA']) });
    expect(broken.json.error.message).toBe('Qwen/Qwen3-8B is not a multimodal model');
    const tokenize = await call(agent, `${emu.url}/tokenize`, { body: { messages: chatBody('x', [img]).messages } });
    expect(tokenize.status).toBe(400);
    const text = await call(agent, `${emu.url}/v1/chat/completions`, { body: chatBody('just text', [], { max_tokens: 20 }) });
    expect(text.status).toBe(200);
    expect(emu.stats().errors.not_multimodal).toBe(3);
  });

  it('is checked: acceptsImages must be a boolean', async () => {
    await expect(emulator({ acceptsImages: 'no' as unknown as boolean })).rejects.toThrow(/`acceptsImages` must be true or false/);
  });
});
