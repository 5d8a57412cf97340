/** Field scoring: leaf paths, lookups, and a truth object scored against outputs by hand. */
import { describe, expect, it } from 'vitest';
import { leaves, scoreFields, valueAt } from '../../src/eval/fields.ts';

describe('leaves', () => {
  it('lists every leaf with its exact and generic path', () => {
    const truth = { total: 5, customer: { name: 'A', tags: [] }, items: [{ amount: 1 }, { amount: 2, note: null }], 'unit price': 3, 'a.b': {} };
    expect(leaves(truth).map((l) => [l.path, l.field])).toEqual([
      ['total', 'total'],
      ['customer.name', 'customer.name'],
      ['customer.tags', 'customer.tags'],
      ['items[0].amount', 'items[].amount'],
      ['items[1].amount', 'items[].amount'],
      ['items[1].note', 'items[].note'],
      ['["unit price"]', '["unit price"]'],
      ['["a.b"]', '["a.b"]'],
    ]);
  });

  it('gives a scalar root the path (root)', () => {
    expect(leaves(7).map((l) => l.path)).toEqual(['(root)']);
  });

  it('an empty root has no fields (an empty truth, a JSONL output whose every page failed); an empty value inside is one', () => {
    expect(leaves({})).toEqual([]);
    expect(leaves([])).toEqual([]);
    expect(leaves({ a: {}, b: [] }).map((l) => l.path)).toEqual(['a', 'b']);
  });
});

describe('valueAt', () => {
  const v = { a: { b: [10, { c: 'x' }] } };
  it.each<[Array<string | number>, unknown]>([
    [['a', 'b', 0], 10],
    [['a', 'b', 1, 'c'], 'x'],
    [['a', 'b', 2], undefined],
    [['a', 'x'], undefined],
    [['a', 0], undefined], // an object is not indexed by position
    [['a', 'b', 'length'], undefined], // nor an array by name
    [['toString'], undefined], // only own keys
  ])('%j → %j', (path, expected) => {
    expect(valueAt(v, path)).toEqual(expected);
  });
});

describe('scoreFields', () => {
  const truth = { number: 'INV-7', date: '2024-03-05', total: 1234.5, customer: { name: 'Acme Corp' }, items: [{ amount: 10 }, { amount: 20 }], note: null };

  it('judges each leaf; extra output fields are not scored', () => {
    const output = { number: 'inv-7', date: '5 March 2024', total: '1,243.50', customer: { name: 'Acme' }, items: [{ amount: '10.00' }], note: null, extra: 'ignored' };
    const results = scoreFields(truth, output);
    expect(results.map((r) => [r.path, r.correct, r.reason ?? null])).toEqual([
      ['number', true, null],
      ['date', true, null],
      ['total', false, 'differs'],
      ['customer.name', false, 'differs'],
      ['items[0].amount', true, null],
      ['items[1].amount', false, 'missing'],
      ['note', true, null],
    ]);
    expect(results.find((r) => r.path === 'total')).toMatchObject({ expected: 1234.5, got: '1,243.50' });
  });

  it('a missing output gets every field wrong, null fields too', () => {
    const results = scoreFields(truth, undefined);
    expect(results).toHaveLength(7);
    expect(results.every((r) => !r.correct && r.reason === 'missing')).toBe(true);
  });

  it('an output that is not an object gets every field with a value missing', () => {
    const results = scoreFields({ a: 1, b: null }, [1, 2]);
    expect(results.map((r) => [r.path, r.correct])).toEqual([
      ['a', false],
      ['b', true],
    ]);
  });
});
