/**
 * What counts as an answer (pure): cut off at max_tokens, a repetition loop, empty, invalid JSON
 * or a schema violation are not; a fenced JSON answer is; real repetition that ended by itself
 * (blank table rows) is kept. Retries rise in temperature.
 */
import { describe, expect, it } from 'vitest';
import { BUILTIN_TASKS } from '../../src/task/builtin.ts';
import { checkAnswer, tailLoop, temperatureFor } from '../../src/task/answer.ts';
import type { Task } from '../../src/task/types.ts';

const text = BUILTIN_TASKS.transcribe;
const json: Task = { ...text, output: { type: 'json', name: 'answer', schema: { type: 'object', properties: { total: { type: 'number' }, date: { type: 'string', format: 'date' } }, required: ['total'], additionalProperties: false } }, fallback: 'none' };

describe('checkAnswer', () => {
  it('a plain answer passes; JSON is parsed (also inside a ```json fence) and validated', () => {
    expect(checkAnswer(text, { text: '# Title\n\nBody.\n', finishReason: 'stop' })).toEqual({ ok: true, text: '# Title\n\nBody.' });
    expect(checkAnswer(json, { text: '{"total": 12.5, "date": "2024-03-05"}', finishReason: 'stop' })).toEqual({ ok: true, text: '{"total": 12.5, "date": "2024-03-05"}', data: { total: 12.5, date: '2024-03-05' } });
    expect(checkAnswer(json, { text: '```json\n{"total": 3}\n```', finishReason: 'stop' })).toMatchObject({ ok: true, data: { total: 3 } });
  });

  it('JSON in the one fence of a reply that says something around it (schema in the prompt, no structured output)', () => {
    // Each was OUTPUT_INVALID "not valid JSON: Unexpected token 'H'", and again at every retry.
    const replies = [
      'Here is the extracted information:\n\n```json\n{"total": 12.5}\n```',
      '```json\n{"total": 12.5}\n```\n\nNote: the date was not legible, so it is left out.',
      'Sure!\n```JSON\n{\n  "total": 12.5\n}\n```\nLet me know if you need more.',
      'The answer:\n~~~\n{"total": 12.5}\n~~~',
      '```jsonc\n{"total": 12.5}\n```',
      '\uFEFF{"total": 12.5}',
      '{"total": 12.5}\n\nNote: the total includes VAT {19%}.',
      '{"total": 12.5} (from the last page)',
    ];
    const anyObject: Task = { ...json, output: { type: 'json', name: 'answer', schema: {} } };
    expect(checkAnswer(anyObject, { text: '{"note": "a } and a \\" in a string"}\nDone.', finishReason: 'stop' })).toMatchObject({ ok: true, data: { note: 'a } and a " in a string' } });
    for (const reply of replies) expect(checkAnswer(json, { text: reply, finishReason: 'stop' }), reply).toMatchObject({ ok: true, data: { total: 12.5 } });
    // Still refused: two fences (two answers), a fence whose JSON breaks the schema, prose alone.
    expect(checkAnswer(json, { text: 'First:\n```json\n{"total": 1}\n```\nOr:\n```json\n{"total": 2}\n```', finishReason: 'stop' })).toMatchObject({ ok: false, code: 'OUTPUT_INVALID', message: expect.stringContaining('not valid JSON') });
    expect(checkAnswer(json, { text: 'Here:\n```json\n{"total": "12"}\n```', finishReason: 'stop' })).toMatchObject({ ok: false, code: 'OUTPUT_INVALID', message: expect.stringContaining('/total must be number') });
    expect(checkAnswer(json, { text: 'The total is 12.5.', finishReason: 'stop' })).toMatchObject({ ok: false, code: 'OUTPUT_INVALID' });
    // Two values are two answers; a value cut short is not one.
    expect(checkAnswer(json, { text: '{"total": 1}\n{"total": 2}', finishReason: 'stop' })).toMatchObject({ ok: false, code: 'OUTPUT_INVALID' });
    expect(checkAnswer(json, { text: '{"total": 1, Note: unsure', finishReason: 'stop' })).toMatchObject({ ok: false, code: 'OUTPUT_INVALID' });
  });

  it('broken JSON whose first object closes early is no answer followed by a note (its later fields were dropped)', () => {
    // A model that closes a nested object one brace too soon: the part up to that brace is valid
    // JSON, the rest (', "total": 12.5}') is the answer's own fields, not words after it.
    const loose: Task = { ...json, output: { type: 'json', name: 'answer', schema: {} } };
    for (const reply of ['{"items": [{"name": "Tea"}]}, "total": 12.5}', '{"total": 12.5}}', '[1, 2]]', '{"a": 1}: 2']) {
      expect(checkAnswer(loose, { text: reply, finishReason: 'stop' }), reply).toMatchObject({ ok: false, code: 'OUTPUT_INVALID' });
    }
  });

  it('a text answer wrapped whole in a ```markdown fence is its inside (it was a code block in X.md)', () => {
    const page = '# Invoice 17\n\n| item | amount |\n|---|---|\n| Tea | 3.20 |';
    for (const reply of [`\`\`\`markdown\n${page}\n\`\`\``, `\`\`\`md\n${page}\n\`\`\`\n`, `~~~Markdown\n${page}\n~~~`, `\`\`\`\`markdown\n${page}\n\`\`\`\``]) {
      expect(checkAnswer(text, { text: reply, finishReason: 'stop' }), reply).toEqual({ ok: true, text: page });
    }
    // Fences inside the wrapper stay.
    const withCode = 'Run:\n\n```python\nprint(1)\n```\n\nThen stop.';
    expect(checkAnswer(text, { text: `\`\`\`markdown\n${withCode}\n\`\`\``, finishReason: 'stop' })).toEqual({ ok: true, text: withCode });
    // Not a wrapper: an untagged fence (a page that is a code listing), a fence that is not the whole answer, an empty one.
    expect(checkAnswer(text, { text: '```\nfor i in x:\n    pass\n```', finishReason: 'stop' })).toEqual({ ok: true, text: '```\nfor i in x:\n    pass\n```' });
    expect(checkAnswer(text, { text: 'Intro.\n```markdown\n# A\n```', finishReason: 'stop' })).toEqual({ ok: true, text: 'Intro.\n```markdown\n# A\n```' });
    expect(checkAnswer(text, { text: '```markdown\n```', finishReason: 'stop' })).toMatchObject({ ok: false, code: 'EMPTY_OUTPUT' });
  });

  it('a reply with a fence and a long run of spaces is read in linear time (no answer blocks the worker)', () => {
    // The closing-fence patterns tried an unbounded run of blanks at every position of the
    // inside: quadratic in a run of spaces (a model degenerating into whitespace): 40,000 spaces
    // took 3 s in unwrapMarkdown and 9 s in jsonOf, 100,000 about a minute, the event loop blocked.
    const spaces = ' '.repeat(100_000);
    const started = performance.now();
    expect(checkAnswer(text, { text: `\`\`\`markdown\n${spaces}x`, finishReason: 'stop' })).toMatchObject({ ok: true });
    expect(checkAnswer(json, { text: `Here:\n\`\`\`json\n${spaces}x`, finishReason: 'stop' })).toMatchObject({ ok: false, code: 'OUTPUT_INVALID' });
    expect(checkAnswer(json, { text: `Here:\n\`\`\`json\n{"total": 1}${spaces}\n\`\`\``, finishReason: 'stop' })).toMatchObject({ ok: true, data: { total: 1 } });
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('a page that begins and ends with two ```markdown examples is no wrapper: its fences stay', () => {
    // A Markdown tutorial's page: a code block, a sentence, another code block. The first block's
    // closing fence closes it; taking the first and last fence lines as one wrapper turned the
    // page inside out (the sentence into code, the examples into text).
    const page = '```markdown\n# A heading\n```\n\nThat is a heading; and a list:\n\n```markdown\n- one\n```';
    expect(checkAnswer(text, { text: page, finishReason: 'stop' })).toEqual({ ok: true, text: page });
  });

  it('cut off, empty, invalid JSON, schema violations: each with its code and why', () => {
    expect(checkAnswer(text, { text: 'It went on and on', finishReason: 'length' })).toMatchObject({ ok: false, code: 'OUTPUT_TRUNCATED' });
    expect(checkAnswer(json, { text: '{"total": 12', finishReason: 'length' })).toMatchObject({ ok: false, code: 'OUTPUT_TRUNCATED' });
    expect(checkAnswer(text, { text: '  \n', finishReason: 'stop' })).toMatchObject({ ok: false, code: 'EMPTY_OUTPUT' });
    expect(checkAnswer(json, { text: "{'total': 1}", finishReason: 'stop' })).toMatchObject({ ok: false, code: 'OUTPUT_INVALID', message: expect.stringContaining('not valid JSON') });
    expect(checkAnswer(json, { text: '{"total": "12", "date": "5 March", "x": 1}', finishReason: 'stop' })).toEqual({
      ok: false,
      code: 'OUTPUT_INVALID',
      message: 'the answer breaks the schema: (root) must NOT have additional properties; /total must be number; /date must match format "date"',
    });
    // Without a schema, the task asks for a JSON object: anything else is invalid.
    const anyObject: Task = { ...json, output: { type: 'json', name: 'answer', schema: {} } };
    expect(checkAnswer(anyObject, { text: '{"a": [1]}', finishReason: 'stop' })).toMatchObject({ ok: true, data: { a: [1] } });
    for (const [answer, what] of [['null', 'null'], ['"just a string"', 'a string'], ['42', 'a number'], ['[1, 2]', 'an array']]) {
      expect(checkAnswer(anyObject, { text: answer!, finishReason: 'stop' }), answer).toMatchObject({ ok: false, code: 'OUTPUT_INVALID', message: expect.stringContaining(`not an object (${what})`) });
    }
  });

  it('a loop: a phrase repeated until max_tokens, or repeated at great length; vLLM\'s finish_reason repetition', () => {
    const looped = `Total: 12.50\n${'the amount of the '.repeat(60)}`;
    expect(checkAnswer(text, { text: looped, finishReason: 'length' })).toMatchObject({ ok: false, code: 'OUTPUT_REPETITIVE', message: expect.stringMatching(/repeat a 18-character phrase \d+ times/) });
    expect(checkAnswer(text, { text: `Intro.\n${'ha '.repeat(1000)}`, finishReason: 'stop' })).toMatchObject({ ok: false, code: 'OUTPUT_REPETITIVE' });
    expect(checkAnswer(text, { text: 'Fine text', finishReason: 'repetition' })).toMatchObject({ ok: false, code: 'OUTPUT_REPETITIVE' });
  });

  it('real repetition that ended by itself is kept: a form with 100 blank table rows, leader dots', () => {
    const form = `| Date | Item | Amount |\n|---|---|---|\n${'|  |  |  |\n'.repeat(100)}`;
    expect(checkAnswer(text, { text: form, finishReason: 'stop' })).toMatchObject({ ok: true });
    const toc = Array.from({ length: 40 }, (_, i) => `Chapter ${i + 1} ${'.'.repeat(40)} ${i * 7 + 1}`).join('\n');
    expect(checkAnswer(text, { text: toc, finishReason: 'stop' })).toMatchObject({ ok: true });
  });

  it('tailLoop finds the smallest period covering the end', () => {
    expect(tailLoop(`start ${'abc'.repeat(100)}`)).toEqual({ period: 3, repeats: 100, cover: 300 });
    expect(tailLoop('no loop here at all, just words that go on without repeating themselves')).toBeNull();
  });
});

describe('temperatureFor', () => {
  it('the task\'s own first, then +0.2 a retry from at least 0.1, at most 1 (or the task\'s own if higher)', () => {
    expect([0, 1, 2, 3].map((k) => temperatureFor(text, k))).toEqual([0, 0.3, 0.5, 0.7]);
    const warm = { ...text, sampling: { temperature: 0.7 } };
    expect([0, 1, 2, 3].map((k) => temperatureFor(warm, k))).toEqual([0.7, 0.9, 1, 1]);
    const hot = { ...text, sampling: { temperature: 1.5 } };
    expect([0, 1, 5].map((k) => temperatureFor(hot, k))).toEqual([1.5, 1.5, 1.5]);
  });
});
