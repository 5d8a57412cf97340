import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { countTokens as o200k } from 'gpt-tokenizer/encoding/o200k_base';
import { afterAll, describe, expect, it } from 'vitest';
import { detectFile } from '../../../src/ingest/detect.ts';
import { splitExport, type ChunkRecord, type SplitOptions } from '../../../src/ingest/chat/split.ts';
import { estimateTokens } from '../../../src/ingest/tokens.ts';
import { rng, sampleText, SAMPLE_KINDS } from '../../../bench/lib/text-corpus.ts';
import { ChatgptTree, makeZip, readSidecar, tempDir, writeBytes, writeJson } from './fixtures.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

let n = 0;
async function splitFile(path: string, options: Partial<SplitOptions> = {}) {
  const kind = await detectFile(path);
  if (kind.kind !== 'chat') throw new Error(`not chat: ${JSON.stringify(kind)}`);
  const sidecar = join(tmp.dir, `s${++n}.jsonl`);
  const result = await splitExport(path, kind, sidecar, { file: 'x', budgetTokens: 3500, ...options });
  const bytes = readFileSync(sidecar);
  return { kind, result, bytes, records: readSidecar(bytes, result.units) as unknown as ChunkRecord[] };
}

/** Many conversations with branches and multilingual text of varied lengths. */
function generated(count: number, seed: number): { conversations: unknown[]; shown: Map<string, string[]> } {
  const rand = rng(seed);
  const conversations: unknown[] = [];
  const shown = new Map<string, string[]>();
  for (let c = 0; c < count; c++) {
    const t = new ChatgptTree();
    let at = t.add(t.rootId, { role: 'system', text: 'system prompt', hidden: true });
    const ids: string[] = [];
    const turns = 1 + Math.floor(rand() * 30);
    for (let k = 0; k < turns; k++) {
      const kind = SAMPLE_KINDS[Math.floor(rand() * SAMPLE_KINDS.length)] ?? 'english';
      const size = rand() < 0.05 ? 30_000 : 20 + Math.floor(rand() * 3000);
      if (rand() < 0.2) t.add(at, { role: k % 2 ? 'assistant' : 'user', text: 'ABANDONED branch text' });
      at = t.add(at, { role: k % 2 ? 'assistant' : 'user', text: sampleText(kind, Math.floor(rand() * 1e9), size) });
      ids.push(at);
    }
    const id = `conv-${c}`;
    conversations.push(t.build({ id, current_node: at }));
    shown.set(id, ids);
  }
  return { conversations, shown };
}

describe('splitExport: the sidecar', () => {
  it('every visible message in exactly one chunk, in order; budgets hold; units, bytes and hash match the file', async () => {
    const { conversations, shown } = generated(40, 7);
    const path = writeJson(tmp.dir, 'gen.json', conversations);
    const budget = 1200;
    const { result, bytes, records } = await splitFile(path, { budgetTokens: budget });

    expect(result.format).toBe('chatgpt');
    expect(result.conversations).toBe(40);
    expect(result.sidecarBytes).toBe(bytes.length);
    expect(result.sidecarSha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(result.chunks).toBe(records.length);
    expect(bytes.toString('utf8').split('\n')).toHaveLength(records.length + 1); // one line a unit, final newline
    let end = 0;
    for (const u of result.units) {
      expect(u.offset).toBe(end);
      end = u.offset + u.length + 1;
    }
    expect(bytes.toString('utf8')).not.toContain('ABANDONED');

    let messages = 0;
    for (const [id, expected] of shown) {
      const mine = records.filter((r) => r.conversation_id === id);
      mine.forEach((r, k) => {
        expect([r.chunk, r.chunks]).toEqual([k, mine.length]);
        expect(r.tokens).toBeLessThanOrEqual(budget);
        expect(r.tokens).toBe(estimateTokens(r.text));
        expect(r.overlap_message_ids).toEqual([]);
      });
      // Split messages appear in consecutive chunks: collapse repeats to compare the order.
      const ids = mine.flatMap((r) => r.message_ids).filter((x, k, all) => k === 0 || all[k - 1] !== x);
      expect(ids).toEqual(expected);
      messages += expected.length;
    }
    expect(result.messages).toBe(messages);
    expect(result.skipped).toEqual({ hidden: 40 });
  });

  it('overlap repeats trailing whole messages, listed apart from message_ids', async () => {
    const t = new ChatgptTree();
    const texts = Array.from({ length: 30 }, (_, k) => `message ${k} ${sampleText('english', k, 400)}`);
    const ids = t.chain(t.rootId, texts);
    const path = writeJson(tmp.dir, 'overlap.json', [t.build({ id: 'o', current_node: ids.at(-1) as string })]);
    const { records } = await splitFile(path, { budgetTokens: 600, overlapTokens: 250 });
    expect(records.length).toBeGreaterThan(3);
    expect(records.flatMap((r) => r.message_ids)).toEqual(ids);
    for (let k = 1; k < records.length; k++) {
      const r = records[k] as ChunkRecord;
      const prev = records[k - 1] as ChunkRecord;
      expect(r.overlap_message_ids.length).toBeGreaterThan(0);
      expect(prev.message_ids.slice(-r.overlap_message_ids.length)).toEqual(r.overlap_message_ids);
      expect(r.message_ids.some((id) => r.overlap_message_ids.includes(id))).toBe(false);
      expect(r.tokens).toBeLessThanOrEqual(600);
      const firstOverlapped = texts[ids.indexOf(r.overlap_message_ids[0] as string)] as string;
      expect(r.text.startsWith(`${ids.indexOf(r.overlap_message_ids[0] as string) % 2 ? 'assistant' : 'user'}: ${firstOverlapped}`)).toBe(true);
    }
  });

  it('a real tokenizer as countTokens: every chunk within budget by that tokenizer', async () => {
    const { conversations } = generated(8, 11);
    const path = writeJson(tmp.dir, 'o200k.json', conversations);
    const { records } = await splitFile(path, { budgetTokens: 700, countTokens: o200k });
    for (const r of records) expect(o200k(r.text)).toBeLessThanOrEqual(700);
  });

  it('reads the export .zip as downloaded (entry at the root or one folder down), streamed', async () => {
    const { conversations } = generated(5, 3);
    const json = JSON.stringify(conversations);
    const direct = await splitFile(writeJson(tmp.dir, 'plain.json', conversations));
    for (const [name, entry] of [['root.zip', 'conversations.json'], ['nested.zip', 'export-2024/conversations.json']] as const) {
      const zip = makeZip([
        { name: 'chat.html', data: '<html></html>' },
        { name: '__MACOSX/conversations.json', data: 'junk' },
        { name: entry, data: json },
        { name: 'file-abc.png', data: Buffer.alloc(1000), deflate: false },
      ]);
      const got = await splitFile(writeBytes(tmp.dir, name, zip));
      expect(got.kind).toEqual({ kind: 'chat', format: 'chatgpt', zipEntry: entry, zipRecord: expect.objectContaining({ fileName: entry }) });
      expect(got.bytes.equals(direct.bytes)).toBe(true);
    }
    // Two exports zipped together, each one folder down: refused, naming both (one was dropped).
    const two = makeZip([
      { name: 'a/conversations.json', data: json },
      { name: 'b/conversations.json', data: json },
    ]);
    const twoPath = writeBytes(tmp.dir, 'two.zip', two);
    await expect(splitFile(twoPath)).rejects.toMatchObject({ code: 'ZIP_SEVERAL_EXPORTS', message: expect.stringContaining('a/conversations.json, b/conversations.json') });
  });

  it('Claude export: linear messages, content blocks preferred over text, thinking skipped, attachments kept', async () => {
    const claude = [
      {
        uuid: 'c-1',
        name: 'Trip',
        created_at: '2024-05-01T10:00:00.000Z',
        updated_at: '2024-05-01T10:05:00.000Z',
        chat_messages: [
          { uuid: 'm1', sender: 'human', text: 'Plan a trip', content: [{ type: 'text', text: 'Plan a trip' }], attachments: [{ file_name: 'notes.txt', extracted_content: 'Kyoto, 3 days' }], files: [] },
          { uuid: 'm2', sender: 'assistant', text: 'x', content: [{ type: 'thinking', thinking: 'SKIP-me' }, { type: 'text', text: 'Day 1: 金閣寺' }] },
          { uuid: 'm3', sender: 'human', text: '', content: [] },
          { uuid: 'm4', sender: 'human', text: 'Thanks 🙏', files: [{ file_name: 'map.png' }] },
        ],
      },
    ];
    const { kind, result, records } = await splitFile(writeJson(tmp.dir, 'claude.json', claude));
    expect(kind).toEqual({ kind: 'chat', format: 'claude' });
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ conversation_id: 'c-1', title: 'Trip', message_ids: ['m1', 'm2', 'm4'], create_time: 1714557600 });
    expect(records[0]?.text).toBe('user: Plan a trip\n[attachment: notes.txt]\nKyoto, 3 days\n\nassistant: Day 1: 金閣寺\n\nuser: Thanks 🙏\n[file: map.png]');
    expect(result.skipped).toEqual({ 'content_type:thinking': 1, empty: 1 });
  });

  it('JSONL: string or part-list content, ids from the line when absent, BOM allowed', async () => {
    const lines = [
      JSON.stringify({ id: 'j1', title: 'one', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: [{ type: 'text', text: 'Hello' }, { type: 'image_url', image_url: { url: 'x' } }, { type: 'input_audio' }] }] }),
      '',
      JSON.stringify({ messages: [{ role: 'user', content: 'no id here' }] }),
    ];
    const path = writeBytes(tmp.dir, 'data.jsonl', `\uFEFF${lines.join('\r\n')}\r\n`);
    const { kind, result, records } = await splitFile(path);
    expect(kind).toEqual({ kind: 'chat', format: 'jsonl' });
    expect(records.map((r) => [r.conversation_id, r.message_ids])).toEqual([
      ['j1', ['0', '1', '2']],
      ['line-3', ['0']],
    ]);
    expect(records[0]?.text).toBe('system: Be brief.\n\nuser: Hi\n\nassistant: Hello\n[image]');
    expect(result.skipped).toEqual({ 'content_type:input_audio': 1 });
  });

  it('dates without a zone (JSONL created_at, Claude created_at) are UTC, whatever the zone of the machine splitting', async () => {
    const line = (id: string, created_at: string) => JSON.stringify({ id, created_at, messages: [{ role: 'user', content: 'hi' }] });
    const path = writeBytes(tmp.dir, 'dates.jsonl', [line('a', '2024-05-01T12:34:56.123456'), line('b', '2024-05-01 12:34:56'), line('c', '2024-05-01T12:34:56Z'), line('d', '2024-05-01T14:34:56+02:00')].join('\n'));
    const zone = process.env.TZ;
    const times: Array<Array<number | null>> = [];
    try {
      for (const tz of ['UTC', 'Asia/Tokyo', 'America/Los_Angeles']) {
        process.env.TZ = tz;
        const { records } = await splitFile(path);
        times.push(records.map((r) => r.create_time));
      }
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
    for (const t of times) expect(t).toEqual([1714566896.123, 1714566896, 1714566896, 1714566896]);
  });

  it('JSONL with function calling (the fine-tuning format): the calls an assistant makes are kept, not dropped as empty', async () => {
    const line = {
      messages: [
        { role: 'user', content: 'Weather in Paris and Oslo?' },
        { role: 'assistant', content: null, tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } },
          { id: 'call_2', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Oslo"}' } },
        ] },
        { role: 'tool', tool_call_id: 'call_1', content: '21 C' },
        { role: 'tool', tool_call_id: 'call_2', content: '9 C' },
        { role: 'assistant', content: 'Let me convert.', function_call: { name: 'to_fahrenheit', arguments: '{"c": [21, 9]}' } },
        { role: 'function', name: 'to_fahrenheit', content: '[70, 48]' },
        { role: 'assistant', content: 'Paris 70 F, Oslo 48 F.' },
      ],
    };
    const { result, records } = await splitFile(writeBytes(tmp.dir, 'tools.jsonl', `${JSON.stringify(line)}\n`));
    expect(records).toHaveLength(1);
    expect(records[0]?.message_ids).toEqual(['0', '1', '2', '3', '4', '5', '6']);
    expect(records[0]?.text).toBe(
      'user: Weather in Paris and Oslo?\n\n' +
        'assistant: [tool call: get_weather]\n{"city": "Paris"}\n[tool call: get_weather]\n{"city": "Oslo"}\n\n' +
        'tool: 21 C\n\ntool: 9 C\n\n' +
        'assistant: Let me convert.\n[tool call: to_fahrenheit]\n{"c": [21, 9]}\n\n' +
        'function: [70, 48]\n\nassistant: Paris 70 F, Oslo 48 F.',
    );
    expect(result.skipped).toEqual({});
  });

  it("JSONL in OpenAI's Responses API shape: input_text and output_text parts are the text, a refusal is said", async () => {
    // The assistant's output_text parts were skipped (counted as content_type:output_text): its
    // side of the conversation was gone from the chunks; a conversation of them alone was EXPORT_EMPTY.
    const line = { id: 'resp', messages: [
      { role: 'user', content: [{ type: 'input_text', text: 'What is on this receipt?' }, { type: 'input_image', image_url: 'data:image/png;base64,AAAA' }] },
      { role: 'assistant', content: [{ type: 'output_text', text: 'A coffee for 3.20 EUR.', annotations: [] }] },
      { role: 'user', content: [{ type: 'input_text', text: 'Whose card paid?' }] },
      { role: 'assistant', content: [{ type: 'refusal', refusal: 'I cannot identify people from card details.' }] },
    ] };
    const { result, records } = await splitFile(writeBytes(tmp.dir, 'responses.jsonl', `${JSON.stringify(line)}\n`));
    expect(records).toHaveLength(1);
    expect(records[0]?.text).toBe(
      'user: What is on this receipt?\n[image]\n\nassistant: A coffee for 3.20 EUR.\n\nuser: Whose card paid?\n\nassistant: [refusal] I cannot identify people from card details.',
    );
    expect(result.skipped).toEqual({});
  });

  it('JSONL: a tool call of another type than function is shown by its type, not a reason to refuse the export', async () => {
    const line = { messages: [
      { role: 'user', content: 'Plot it.' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'code_interpreter', code_interpreter: { input: 'plot(x)' } }] },
      { role: 'assistant', content: 'Done.' },
    ] };
    const { records } = await splitFile(writeBytes(tmp.dir, 'other-tools.jsonl', `${JSON.stringify(line)}\n${JSON.stringify({ messages: [{ role: 'user', content: 'Next.' }] })}\n`));
    expect(records).toHaveLength(2);
    expect(records[0]?.text).toBe('user: Plot it.\n\nassistant: [tool call: code_interpreter]\n{"input":"plot(x)"}\n\nassistant: Done.');
  });

  it('what was skipped is counted in a bounded record: reasons cut at 100 characters, at most 100 of them, the rest as other (an export naming 100,000 long types made a 102 MB record)', async () => {
    const parts = Array.from({ length: 300 }, (_, k) => ({ type: `t${String(k).padStart(3, '0')}${'x'.repeat(500)}` }));
    const line = JSON.stringify({ id: 'a', messages: [{ role: 'user', content: [...parts, 'hello', { type: 'image' }] }, { role: 'assistant', content: [{ type: 'thinking' }, 'hi'] }] });
    const { result } = await splitFile(writeBytes(tmp.dir, 'many-types.jsonl', `${line}\n`));
    const reasons = Object.keys(result.skipped);
    expect(reasons).toHaveLength(101);
    expect(reasons.every((r) => r.length <= 100)).toBe(true);
    expect(result.skipped[`content_type:t000${'x'.repeat(100 - 'content_type:t000'.length - 1)}…`]).toBe(1);
    expect(result.skipped['other (more kinds than listed)']).toBe(201);
    expect(Object.values(result.skipped).reduce((a, b) => a + b, 0)).toBe(301);
  });

  it('a skip reason cut at its limit inside an emoji keeps the emoji whole (no lone surrogate in the record)', async () => {
    // 'content_type:' + 85 characters puts the first emoji's two halves at 98 and 99.
    const line = JSON.stringify({ id: 'e', messages: [{ role: 'user', content: [{ type: `${'x'.repeat(85)}${'🧪'.repeat(10)}` }, 'hello'] }, { role: 'assistant', content: 'hi' }] });
    const { result } = await splitFile(writeBytes(tmp.dir, 'emoji-type.jsonl', `${line}\n`));
    const reasons = Object.keys(result.skipped);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]!.isWellFormed(), JSON.stringify(reasons[0])).toBe(true);
    expect(reasons[0]!.endsWith('…')).toBe(true);
  });

  it('JSONL: a tool call whose type names a member of every object (constructor, toString, __proto__) is shown by its type, not a TypeError', async () => {
    // Was "Cannot read properties of undefined (reading 'trim')": not an error of the file, so
    // `enqueue` stopped there and the files after it were never read.
    const lines = ['constructor', 'toString', '__proto__', 'hasOwnProperty'].map((type) =>
      JSON.stringify({ id: type, messages: [{ role: 'user', content: 'Go.' }, { role: 'assistant', content: null, tool_calls: [{ type }] }] }),
    );
    const { records } = await splitFile(writeBytes(tmp.dir, 'prototype-tools.jsonl', `${lines.join('\n')}\n`));
    expect(records.map((r) => r.text)).toEqual(['constructor', 'toString', '__proto__', 'hasOwnProperty'].map((type) => `user: Go.\n\nassistant: [tool call: ${type}]`));
  });
});
