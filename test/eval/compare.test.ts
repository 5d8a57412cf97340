/**
 * Comparing models on one document (what the writer puts in X.compare.json), and reading the
 * writer's output files (X.json, X.md, X.jsonl in each of its forms) into what is compared.
 */
import { describe, expect, it } from 'vitest';
import { compareDocument, DEFAULT_COMPARE } from '../../src/eval/compare.ts';
import { parseOutput } from '../../src/eval/outputs.ts';
import { DocbatchError } from '../../src/errors.ts';

const fields = (value: unknown) => ({ kind: 'fields' as const, value });
const md = (text: string) => parseOutput('X.md', text);

describe('compareDocument: fields', () => {
  const a = { total: '1,234.50', date: 'March 5, 2024', name: 'Acme', items: [{ amount: 1 }, { amount: 2 }] };
  const b = { total: 1234.5, date: '2024-03-05', name: 'ACME inc', items: [{ amount: 1 }] };

  it('compares every path any model has, after normalisation', () => {
    const c = compareDocument('inv', [
      { model: 'A', content: fields(a) },
      { model: 'B', content: fields(b) },
    ]);
    expect(c).toMatchObject({ document: 'inv', models: ['A', 'B'], missing: [], kind: 'fields', fields: 5, agreeing_fields: 3, field_agreement: 0.6, agree: false });
    expect(c.disagreements).toEqual([
      { path: 'name', field: 'name', values: { A: 'Acme', B: 'ACME inc' } },
      { path: 'items[1].amount', field: 'items[].amount', values: { A: 2, B: null } },
    ]);
    expect(c.per_field).toEqual({
      date: { compared: 1, agreeing: 1, agreement: 1 },
      'items[].amount': { compared: 2, agreeing: 1, agreement: 0.5 },
      name: { compared: 1, agreeing: 0, agreement: 0 },
      total: { compared: 1, agreeing: 1, agreement: 1 },
    });
  });

  it('agrees when all models agree on every field; a model without output is missing', () => {
    const same = compareDocument('inv', [
      { model: 'A', content: fields(a) },
      { model: 'B', content: fields({ ...a, total: 1234.5 }) },
    ]);
    expect(same).toMatchObject({ fields: 5, agreeing_fields: 5, field_agreement: 1, agree: true, disagreements: [] });
    const three = compareDocument('inv', [
      { model: 'A', content: fields(a) },
      { model: 'B', content: fields(a) },
      { model: 'C', content: null },
    ]);
    expect(three).toMatchObject({ models: ['A', 'B'], missing: ['C'], field_agreement: 1, agree: false });
  });

  it('with three models a field agrees only when every two agree', () => {
    const c = compareDocument('x', [
      { model: 'A', content: fields({ v: 1 }) },
      { model: 'B', content: fields({ v: '1.00' }) },
      { model: 'C', content: fields({ v: 2 }) },
    ]);
    expect(c.disagreements).toEqual([{ path: 'v', field: 'v', values: { A: 1, B: '1.00', C: 2 } }]);
  });
});

describe('compareDocument: text', () => {
  it('compares page by page; a failed page disagrees', () => {
    const c = compareDocument(
      'book',
      [
        { model: 'A', content: md('<!-- page 1 -->\nabcd\n<!-- page 2 -->\nsame\n') },
        { model: 'B', content: md('<!-- page 1 -->\nabce\n<!-- page 2 failed: ENGINE_OOM: oom -->\n') },
      ],
      { ...DEFAULT_COMPARE, threshold: 0.7 },
    );
    expect(c.pages).toEqual([
      { page: 1, similarity: 0.75, pairs: { 'A vs B': 0.75 }, agree: true, failed: [] },
      { page: 2, similarity: 0, pairs: { 'A vs B': 0 }, agree: false, failed: ['B'] },
    ]);
    expect(c).toMatchObject({ kind: 'text', agreeing_pages: 1, mean_similarity: 0.375, agree: false });
  });

  it('a page agrees only at or above the threshold; the lowest pair decides', () => {
    const c = compareDocument('book', [
      { model: 'A', content: md('<!-- page 1 -->\nabcd\n') },
      { model: 'B', content: md('<!-- page 1 -->\nabcd\n') },
      { model: 'C', content: md('<!-- page 1 -->\nabce\n') },
    ]);
    expect(c.pages).toEqual([{ page: 1, similarity: 0.75, pairs: { 'A vs B': 1, 'A vs C': 0.75, 'B vs C': 0.75 }, agree: false, failed: [] }]);
  });

  it('compares whole texts when an output has no markers; text against fields is missing', () => {
    const c = compareDocument('doc', [
      { model: 'A', content: md('<!-- page 1 -->\nhello\n<!-- page 2 -->\nworld\n') },
      { model: 'B', content: md('Hello World') },
      { model: 'C', content: fields({ a: 1 }) },
    ]);
    expect(c).toMatchObject({ models: ['A', 'B'], missing: ['C'], pages: [{ page: null, similarity: 1, agree: true }] });
  });
});

describe('parseOutput', () => {
  it('X.json is the object; X.md is text with pages', () => {
    expect(parseOutput('/o/X.json', '{"a": 1}')).toEqual({ kind: 'fields', value: { a: 1 } });
    expect(parseOutput('X.md', '<!-- page 1 -->\nhi')).toEqual({ kind: 'text', text: { pages: [{ page: 1, text: 'hi' }], text: 'hi' } });
  });

  it('X.jsonl with data: fields keyed by page, or by conversation and chunk; failed units have none', () => {
    const pages = ['{"page": 1, "data": {"total": 5}}', '{"page": 2, "error": {"code": "ENGINE_OOM", "message": "oom"}}', '{"page": 3, "data": {"total": 7}}'].join('\n');
    expect(parseOutput('X.jsonl', pages)).toEqual({ kind: 'fields', value: { '1': { total: 5 }, '3': { total: 7 } }, failed: ['2'] });
    const chunks = ['{"conversation_id": "c1", "chunk": 0, "data": {"topic": "a"}}', '{"conversation_id": "c1", "chunk": 1, "data": {"topic": "b"}}'].join('\n');
    expect(parseOutput('X.jsonl', chunks)).toEqual({ kind: 'fields', value: { 'c1#0': { topic: 'a' }, 'c1#1': { topic: 'b' } } });
  });

  it('X.jsonl with text or summaries: pages when they carry page numbers, else the text in order', () => {
    const pages = ['{"page": 1, "text": "one"}', '{"page": 2, "error": {"code": "RENDER_FAILED", "message": "bad"}}'].join('\n');
    expect(parseOutput('X.jsonl', pages)).toEqual({
      kind: 'text',
      text: { pages: [{ page: 1, text: 'one' }, { page: 2, text: '', failed: { code: 'RENDER_FAILED', message: 'bad' } }], text: 'one' },
      failed: ['2'],
    });
    const chunks = ['{"conversation_id": "c1", "chunk": 0, "summary": "first"}', '{"conversation_id": "c1", "chunk": 1, "summary": null, "error": {"code": "X", "message": "y"}}', '{"conversation_id": "c2", "chunk": 0, "summary": "second"}'].join('\n');
    expect(parseOutput('X.jsonl', chunks)).toEqual({ kind: 'text', text: { pages: null, text: 'first\nsecond' }, failed: ['c1#1'] });
  });

  it('a broken line is EVAL_BAD_OUTPUT with its file and line', () => {
    let err: unknown;
    try {
      parseOutput('/o/X.jsonl', '{"page": 1, "data": {}}\n{"page": 2, "data": \n');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DocbatchError);
    expect((err as DocbatchError).code).toBe('EVAL_BAD_OUTPUT');
    expect((err as DocbatchError).describe()).toMatch(/^\/o\/X\.jsonl: line 2: EVAL_BAD_OUTPUT: not valid JSON/);
  });
});
