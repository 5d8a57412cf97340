/**
 * Structured output over real HTTP: response_format json_schema / json_object and vLLM's
 * structured_outputs (json, choice) answer JSON of the schema's shape, with values read from the
 * request's `Label: value` lines and typed; vLLM's 400s for bad constraints and schemas;
 * guided_json ignored; max_tokens cuts the JSON; streaming, batch and completions carry it too.
 */
import { describe, expect, it } from 'vitest';
import { countText } from '../../src/emulator/tokens.ts';
import { call, chatBody, emulatorsForFile } from './helpers.ts';

const { agent, emulator } = emulatorsForFile();

const INVOICE = [
  'ACME Supplies Ltd. — Invoice',
  'Invoice number: INV-2024-0042',
  '**Issue date:** March 3, 2024',
  '- Total: $1,234.50',
  'Paid: yes',
  'Status: Overdue',
  'Item: Widget',
  'Quantity: 2',
  'Item: Gadget',
  'Quantity: 5',
  'Tags: red, blue; green',
  'Customer name: Ada Lovelace',
  'City: London',
].join('\n');

const SCHEMA = {
  type: 'object',
  properties: {
    invoice_number: { type: 'string' },
    issueDate: { type: 'string', format: 'date' },
    amount: { type: 'number', title: 'Total' },
    paid: { type: 'boolean' },
    status: { enum: ['open', 'overdue', 'paid'] },
    items: { type: 'array', items: { type: 'object', properties: { item: { type: 'string' }, quantity: { type: 'integer' } }, required: ['item', 'quantity'] } },
    tags: { type: 'array', items: { type: 'string' } },
    customer: { $ref: '#/$defs/Customer' },
    note: { type: ['string', 'null'] },
    reference: { type: 'integer', minimum: 10, maximum: 20 },
    optional_missing: { type: 'string' },
  },
  required: ['invoice_number', 'customer', 'note', 'reference'],
  $defs: { Customer: { type: 'object', properties: { name: { type: 'string', title: 'Customer name' }, city: { type: 'string' } } } },
};

const EXPECTED = {
  invoice_number: 'INV-2024-0042',
  issueDate: '2024-03-03',
  amount: 1234.5,
  paid: true,
  status: 'overdue',
  items: [
    { item: 'Widget', quantity: 2 },
    { item: 'Gadget', quantity: 5 },
  ],
  tags: ['red', 'blue', 'green'],
  customer: { name: 'Ada Lovelace', city: 'London' },
  note: null,
};

const jsonSchema = (schema: unknown = SCHEMA) => ({ response_format: { type: 'json_schema', json_schema: { name: 'invoice', schema, strict: true } } });

async function chat(url: string, body: Record<string, unknown>) {
  return call(agent, `${url}/v1/chat/completions`, { body });
}

describe('json_schema', () => {
  it('answers JSON of the schema, each field read from its Label: value line and typed', async () => {
    const emu = await emulator({ speed: 100 });
    const r = await chat(emu.url, chatBody(INVOICE, [], { ...jsonSchema(), max_tokens: 400 }));
    expect(r.status).toBe(200);
    const choice = r.json.choices[0];
    expect(choice.finish_reason).toBe('stop');
    const value = JSON.parse(choice.message.content);
    expect(value).toMatchObject(EXPECTED);
    // A required field the text lacks: a filler of its type, within its bounds; optional ones are left out.
    expect(Number.isInteger(value.reference)).toBe(true);
    expect(value.reference).toBeGreaterThanOrEqual(10);
    expect(value.reference).toBeLessThanOrEqual(20);
    expect(value).not.toHaveProperty('optional_missing');
    expect(Object.keys(value)).toEqual(['invoice_number', 'issueDate', 'amount', 'paid', 'status', 'items', 'tags', 'customer', 'note', 'reference']);
    expect(r.json.usage.completion_tokens).toBe(countText(choice.message.content));

    const s = emu.stats();
    // 5 top-level scalars + 2x2 item fields + 3 tags + 2 customer fields = 14 read; note (null) and reference made up.
    expect(s.fields).toEqual({ extracted: 14, altered: 0, filled: 2 });
    expect(s.jsonAnswers).toBe(1);
    const [record] = emu.answers();
    expect(record).toMatchObject({ id: r.json.id, index: 0, flaw: null, finishReason: 'stop' });
    expect(record?.fields?.find((f) => f.path === 'items[1].quantity')).toEqual({ path: 'items[1].quantity', value: 5, source: 'text', altered: false });
  });

  it('is deterministic: the same content gets the same JSON, also from another emulator', async () => {
    const a = await emulator({ speed: 100 });
    const b = await emulator({ speed: 100 });
    const body = chatBody('Invoice number: 7\nTotal: 3', [], jsonSchema({ type: 'object', properties: { invoice_number: { type: 'string' }, x: { type: 'string' }, y: { type: 'number' } }, required: ['x', 'y'] }));
    const [r1, r2, r3] = await Promise.all([chat(a.url, body), chat(a.url, body), chat(b.url, { ...body, temperature: 0.9, seed: 4 })]);
    expect(r1.json.choices[0].message.content).toBe(r2.json.choices[0].message.content);
    expect(r1.json.choices[0].message.content).toBe(r3.json.choices[0].message.content);
    const v = JSON.parse(r1.json.choices[0].message.content);
    expect(v.invoice_number).toBe('7');
    expect(typeof v.x).toBe('string');
    expect(typeof v.y).toBe('number');
  });

  it('reads labels in many spellings and converts numbers, dates, booleans, enums and formats', async () => {
    const emu = await emulator({ speed: 100 });
    const text = [
      '> INVOICE-NUMBER: A1',
      '## Net amount: 1.234,56 €',
      'Discount: (12.00)',
      'Due date: 05.03.2024',
      'Shipped on: 3/5/2024',
      'Signed: No',
      'Contact email: "ops@example.org"',
      'Priority: HIGH',
      'Meeting at: 2024-06-01 9:30 pm',
    ].join('\n');
    const schema = {
      type: 'object',
      properties: {
        invoiceNumber: { type: 'string' },
        net_amount: { type: 'number' },
        discount: { type: 'number' },
        due_date: { type: 'string', format: 'date' },
        shipped_on: { type: 'string', format: 'date' },
        signed: { type: 'boolean' },
        contact_email: { type: 'string', format: 'email' },
        priority: { type: 'string', enum: ['low', 'high'] },
        meeting_at: { type: 'string', format: 'date-time' },
      },
    };
    const r = await chat(emu.url, chatBody(text, [], jsonSchema(schema)));
    expect(JSON.parse(r.json.choices[0].message.content)).toEqual({
      invoiceNumber: 'A1',
      net_amount: 1234.56,
      discount: -12,
      due_date: '2024-03-05',
      shipped_on: '2024-03-05',
      signed: false,
      contact_email: 'ops@example.org',
      priority: 'high',
      meeting_at: '2024-06-01T21:30:00Z',
    });
  });

  it('reads every text part of every message, the system prompt included', async () => {
    const emu = await emulator({ speed: 100 });
    const body = {
      messages: [
        { role: 'system', content: 'Account: 99' },
        { role: 'user', content: [{ type: 'text', text: 'Owner: Grace' }, { type: 'text', text: 'Balance: 10' }] },
      ],
      ...jsonSchema({ type: 'object', properties: { account: { type: 'integer' }, owner: { type: 'string' }, balance: { type: 'number' } } }),
    };
    const r = await chat(emu.url, body);
    expect(JSON.parse(r.json.choices[0].message.content)).toEqual({ account: 99, owner: 'Grace', balance: 10 });
  });

  it('max_tokens cuts the JSON: finish_reason length, a prefix of the whole answer', async () => {
    const emu = await emulator({ speed: 100 });
    const whole = (await chat(emu.url, chatBody(INVOICE, [], jsonSchema()))).json.choices[0].message.content as string;
    const r = await chat(emu.url, chatBody(INVOICE, [], { ...jsonSchema(), max_tokens: 20 }));
    const c = r.json.choices[0];
    expect(c.finish_reason).toBe('length');
    expect(r.json.usage.completion_tokens).toBe(20);
    expect(whole.startsWith(c.message.content)).toBe(true);
    expect(() => JSON.parse(c.message.content)).toThrow();
    // A cut answer's fields do not count.
    expect(emu.stats().fields.extracted).toBe(14);
  });
});

describe('other ways to ask', () => {
  it('structured_outputs.json (an object or a JSON string) answers as response_format does', async () => {
    const emu = await emulator({ speed: 100 });
    const viaRf = await chat(emu.url, chatBody(INVOICE, [], jsonSchema()));
    const viaSo = await chat(emu.url, chatBody(INVOICE, [], { structured_outputs: { json: SCHEMA } }));
    const viaString = await chat(emu.url, chatBody(INVOICE, [], { structured_outputs: { json: JSON.stringify(SCHEMA) } }));
    expect(viaSo.json.choices[0].message.content).toBe(viaRf.json.choices[0].message.content);
    expect(viaString.json.choices[0].message.content).toBe(viaRf.json.choices[0].message.content);
  });

  it('json_object answers an object of the labels found', async () => {
    const emu = await emulator({ speed: 100 });
    const r = await chat(emu.url, chatBody('Invoice number: 12\nCustomer name: Ada', [], { response_format: { type: 'json_object' } }));
    expect(JSON.parse(r.json.choices[0].message.content)).toEqual({ invoice_number: '12', customer_name: 'Ada' });
    const none = await chat(emu.url, chatBody('no labels here', [], { structured_outputs: { json_object: true } }));
    expect(Object.keys(JSON.parse(none.json.choices[0].message.content))).toEqual(['summary']);
  });

  it('structured_outputs.choice answers one of the choices, the one the text names', async () => {
    const emu = await emulator({ speed: 100 });
    const r = await chat(emu.url, chatBody('This document is a receipt.', [], { structured_outputs: { choice: ['invoice', 'receipt', 'letter'] } }));
    expect(r.json.choices[0].message.content).toBe('receipt');
    const other = await chat(emu.url, chatBody('Nothing to go by.', [], { structured_outputs: { choice: ['invoice', 'receipt', 'letter'] } }));
    expect(['invoice', 'receipt', 'letter']).toContain(other.json.choices[0].message.content);
  });

  it('guided_json is ignored (unconstrained reply), as vLLM does since late 2025; response_format text is free text', async () => {
    const emu = await emulator({ speed: 100 });
    for (const extra of [{ guided_json: SCHEMA }, { response_format: { type: 'text' } }]) {
      const r = await chat(emu.url, chatBody(INVOICE, [], { ...extra, max_tokens: 60 }));
      expect(r.status).toBe(200);
      expect(r.json.choices[0].message.content).toMatch(/^\[emulated reply by docbatch\/emulated-vl\]\n/);
    }
    expect(emu.stats().jsonAnswers).toBe(0);
  });

  it('works on /v1/chat/completions/batch (per conversation), /v1/completions and when streaming', async () => {
    const emu = await emulator({ speed: 100 });
    const schema = { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] };
    const batch = await call(agent, `${emu.url}/v1/chat/completions/batch`, {
      body: { messages: [[{ role: 'user', content: 'Name: A' }], [{ role: 'user', content: 'Name: B' }]], ...jsonSchema(schema) },
    });
    expect(batch.json.choices.map((c: any) => JSON.parse(c.message.content).name)).toEqual(['A', 'B']);
    const completion = await call(agent, `${emu.url}/v1/completions`, { body: { prompt: 'Name: C', max_tokens: 50, ...jsonSchema(schema) } });
    expect(JSON.parse(completion.json.choices[0].text)).toEqual({ name: 'C' });

    const stream = await chat(emu.url, chatBody(INVOICE, [], { ...jsonSchema(), stream: true }));
    const events = stream.text.split('\n\n').filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]').map((e) => JSON.parse(e.slice(6)));
    const streamed = events.map((e) => e.choices[0]?.delta?.content ?? '').join('');
    expect(JSON.parse(streamed)).toMatchObject(EXPECTED);
    expect(emu.stats().jsonAnswers).toBe(4);
  });
});

describe("vLLM's 400s", () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['two kinds in structured_outputs', { structured_outputs: { json: SCHEMA, regex: 'a+' } }, /^You can only use one kind of constraints for structured outputs \('json', 'regex' or 'choice'\)\.$/],
    ['response_format json_schema with a structured_outputs regex', { structured_outputs: { regex: 'a+' }, ...jsonSchema() }, /^You can only use one kind of structured outputs constraint but multiple are specified: /],
    ['an empty structured_outputs', { structured_outputs: {} }, /^You must use one kind of structured outputs constraint but none are specified/],
    ['a JSON string that does not parse', { structured_outputs: { json: '{"type": ' } }, /^Invalid JSON grammar specification\.$/],
    ['a schema with an unknown type', jsonSchema({ type: 'object', properties: { a: { type: 'float' } } }), /^Failed to transform json schema into a grammar: #\/properties\/a: unsupported type "float"$/],
    ['a $ref that resolves nowhere', jsonSchema({ $ref: '#/$defs/Nope' }), /^Failed to transform json schema into a grammar: #: cannot resolve \$ref/],
    ['a json_schema without a name', { response_format: { type: 'json_schema', json_schema: { schema: SCHEMA } } }, /json_schema\.name: Field required/],
    ['an unknown response_format type', { response_format: { type: 'yaml' } }, /^response_format\.type: Input should be/],
  ];
  it.each(cases)('%s', async (_name, extra, message) => {
    const emu = await emulator({ speed: 100 });
    const r = await chat(emu.url, chatBody('Name: A', [], extra));
    expect(r.status).toBe(400);
    expect(r.json.error.type).toBe('BadRequestError');
    expect(r.json.error.message).toMatch(message);
    expect(emu.stats().errors.bad_request).toBe(1);
  });
});
