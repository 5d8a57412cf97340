/**
 * A task and a unit's payload → the request the engine gets: variables filled in, the payload
 * (text layer, chunk) last unless the prompt places it, every page image of a `document` unit in
 * order, the sampling the task sets, structured output as vLLM takes it (`response_format`
 * json_schema, strict) — and, for engines without structured output (SCHEMA_IN_PROMPT), no
 * `response_format` and the schema in the prompt instead.
 */
import { describe, expect, it } from 'vitest';
import type { ContentPart } from '../../src/engine/types.ts';
import { BUILTIN_TASKS, TEXT_LAYER_NOTE } from '../../src/task/builtin.ts';
import { buildRequest, HINT_MAX_CHARS, type Payload } from '../../src/task/request.ts';
import type { Task } from '../../src/task/types.ts';

const SCHEMA = { type: 'object', properties: { total: { type: 'number' } }, required: ['total'] };
const page = (n: number, text = `text of page ${n}`) => ({ page: n, dataUrl: `data:image/png;base64,P${n}`, text });

function task(over: Partial<Task>): Task {
  return { ...BUILTIN_TASKS.transcribe, textLayerNote: undefined as unknown as string, fallback: 'none', ...over };
}

function userParts(messages: ReturnType<typeof buildRequest>['messages']): ContentPart[] {
  const user = messages.find((m) => m.role === 'user')!;
  return typeof user.content === 'string' ? [{ type: 'text', text: user.content }] : user.content;
}

describe('buildRequest', () => {
  it('transcribe: the instruction with the text-layer note, the image, then the text layer', () => {
    const r = buildRequest(BUILTIN_TASKS.transcribe, { kind: 'page', file: 'a.pdf', pages: 3, image: page(2) });
    expect(r.messages).toHaveLength(1);
    expect(userParts(r.messages)).toEqual([
      { type: 'text', text: `${BUILTIN_TASKS.transcribe.prompt} ${TEXT_LAYER_NOTE}` },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,P2' } },
      { type: 'text', text: 'text of page 2' },
    ]);
    expect(r.responseFormat).toBeUndefined();
    // No text layer: no note, no last part.
    expect(userParts(buildRequest(BUILTIN_TASKS.transcribe, { kind: 'page', file: 'a.pdf', pages: 3, image: page(2, '  ') }).messages)).toHaveLength(2);
  });

  it('variables, system message, sampling; text_layer false sends none; a long layer is cut', () => {
    const t = task({ system: 'You file {{file}}.', prompt: 'Page {{page}} of {{pages}} of {{file}}.', sampling: { temperature: 0, maxTokens: 50, topP: 0.8, seed: 3, stop: ['##'] }, textLayer: false });
    const r = buildRequest(t, { kind: 'page', file: 'b.pdf', pages: 9, image: page(4) });
    expect(r.messages[0]).toEqual({ role: 'system', content: 'You file b.pdf.' });
    expect(userParts(r.messages)).toEqual([{ type: 'text', text: 'Page 4 of 9 of b.pdf.' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,P4' } }]);
    expect(r).toMatchObject({ maxTokens: 50, topP: 0.8, seed: 3, stop: ['##'] });
    const long = buildRequest(task({}), { kind: 'page', file: 'b.pdf', pages: 1, image: page(1, 'x'.repeat(HINT_MAX_CHARS + 500)) });
    expect((userParts(long.messages).at(-1) as { text: string }).text.length).toBe(HINT_MAX_CHARS);
  });

  it('{{text}} in the prompt places the text layer there and nothing is appended', () => {
    const r = buildRequest(task({ prompt: 'Layer:\n{{text}}\nEnd.' }), { kind: 'page', file: 'c.pdf', pages: 1, image: page(1, 'hello') });
    expect(userParts(r.messages)).toEqual([{ type: 'text', text: 'Layer:\nhello\nEnd.' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,P1' } }]);
  });

  it('document unit: every page image in order, then the pages\' text layers, each named', () => {
    const payload: Payload = { kind: 'document', file: 'inv.pdf', pages: 2, images: [page(1, 'Invoice number: 7'), page(2, 'Total: 12.50')] };
    const r = buildRequest(task({ unit: 'document', prompt: 'Extract from {{file}} ({{pages}} pages).', output: { type: 'json', schema: SCHEMA, name: 'invoice' } }), payload);
    expect(userParts(r.messages)).toEqual([
      { type: 'text', text: 'Extract from inv.pdf (2 pages).' },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,P1' } },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,P2' } },
      { type: 'text', text: 'Page 1:\nInvoice number: 7\n\nPage 2:\nTotal: 12.50' },
    ]);
    expect(r.responseFormat).toEqual({ type: 'json_schema', json_schema: { name: 'invoice', schema: SCHEMA, strict: true } });
  });

  it('a JSON task without a schema asks for json_object', () => {
    const r = buildRequest(task({ output: { type: 'json', schema: {}, name: 'answer' } }), { kind: 'page', file: 'a.pdf', pages: 1, image: page(1) });
    expect(r.responseFormat).toEqual({ type: 'json_object' });
  });

  it('SCHEMA_IN_PROMPT: no response_format; the schema goes into the instruction', () => {
    const t = task({ prompt: 'Extract.', output: { type: 'json', schema: SCHEMA, name: 'answer' } });
    const r = buildRequest(t, { kind: 'page', file: 'a.pdf', pages: 1, image: page(1) }, { schemaInPrompt: true });
    expect(r.responseFormat).toBeUndefined();
    const first = userParts(r.messages)[0] as { text: string };
    expect(first.text).toBe(`Extract.\n\nAnswer with one JSON value and nothing else (no Markdown fence, no comment), valid against this JSON Schema:\n${JSON.stringify(SCHEMA)}`);
    const loose = buildRequest(task({ prompt: 'Extract.', output: { type: 'json', schema: {}, name: 'answer' } }), { kind: 'page', file: 'a.pdf', pages: 1, image: page(1) }, { schemaInPrompt: true });
    expect(loose.responseFormat).toBeUndefined();
    expect((userParts(loose.messages)[0] as { text: string }).text).toContain('Answer with one JSON object and nothing else');
    // A text task is unchanged by the setting.
    expect(buildRequest(task({}), { kind: 'page', file: 'a.pdf', pages: 1, image: page(1) }, { schemaInPrompt: true })).toEqual(buildRequest(task({}), { kind: 'page', file: 'a.pdf', pages: 1, image: page(1) }));
  });

  it('chat chunks: title, part, chunk numbers; the chunk text last', () => {
    const r = buildRequest(BUILTIN_TASKS.summarize, { kind: 'chunk', file: 'c.json', title: 'Trip', conversationId: 'c1', chunk: 1, chunks: 3, text: 'USER: hi' });
    expect(r.messages[0]).toEqual({ role: 'system', content: BUILTIN_TASKS.summarize.system });
    expect(userParts(r.messages)).toEqual([
      { type: 'text', text: 'Summarize part 2 of 3 of the conversation titled "Trip" in a few short paragraphs.' },
      { type: 'text', text: 'USER: hi' },
    ]);
  });

  it('a conversation task: a long conversation\'s parts are summarized by the built-in first, the task answers from them', () => {
    const t = task({ unit: 'conversation', system: undefined as unknown as string, prompt: 'Decisions in "{{title}}" ({{chunks}} parts) as JSON.', output: { type: 'json', schema: SCHEMA, name: 'decisions' } });
    const map = buildRequest(t, { kind: 'chunk', file: 'c.json', title: 'Plan', conversationId: 'c9', chunk: 0, chunks: 2, text: 'USER: go' }, { mapStep: true });
    expect(map.responseFormat).toBeUndefined();
    expect((userParts(map.messages)[0] as { text: string }).text).toContain('Summarize part 1 of 2 of the conversation titled "Plan"');
    const reduce = buildRequest(t, { kind: 'reduce', file: 'c.json', title: 'Plan', conversationId: 'c9', parts: ['first half', null] });
    expect(reduce.responseFormat).toMatchObject({ type: 'json_schema' });
    expect(userParts(reduce.messages)).toEqual([
      { type: 'text', text: 'Below are summaries of the consecutive parts of the conversation titled "Plan". Decisions in "Plan" (2 parts) as JSON.' },
      { type: 'text', text: 'Part 1 of 2:\nfirst half\n\nPart 2 of 2:\n(this part could not be summarized)' },
    ]);
  });
});
