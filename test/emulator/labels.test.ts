/**
 * The pure pieces under structured output: reading `Label: value` lines, converting values to
 * schema types, altering a field the way a reader errs, breaking JSON, and checking schemas.
 */
import { describe, expect, it } from 'vitest';
import { alterValue } from '../../src/emulator/alter.ts';
import { breakJson, cutoffText, loopText } from '../../src/emulator/flaws.ts';
import { LabelIndex, normalizeLabel, toBoolean, toDate, toNumber, toTime } from '../../src/emulator/labels.ts';
import { checkSchema, resolveNode } from '../../src/emulator/schema.ts';
import { countText } from '../../src/emulator/tokens.ts';

describe('labels', () => {
  it('normalize names and labels alike', () => {
    for (const name of ['invoice_number', 'invoiceNumber', 'Invoice-Number', '**Invoice  number**', 'INVOICE NUMBER']) {
      expect(normalizeLabel(name)).toBe('invoice number');
    }
  });

  it('are read from lines with bullets, quotes, headings and bold, in order, with repetitions', () => {
    const index = new LabelIndex(['# Total: 1\n- **Item:** a\n> Item: b\nnot a label line\nURL: http://x.y/z', 'Item: "c"\nEmpty:']);
    expect(index.all(['item'])).toEqual(['a', 'b', 'c']);
    expect(index.get(['nothing', 'Item'], 1)).toBe('b');
    expect(index.get(['url'])).toBe('http://x.y/z');
    expect(index.entries().map(([label]) => label)).toEqual(['total', 'item', 'url']);
  });
});

describe('conversions', () => {
  it.each([
    ['$1,234.50', 1234.5],
    ['1.234,56 €', 1234.56],
    ['1 234 567', 1234567],
    ['12,5', 12.5],
    ['1,234', 1234],
    ['-7', -7],
    ['(300.00)', -300],
    ['12%', 12],
    ['EUR 99', 99],
    ['none', undefined],
  ])('toNumber(%j) = %j', (raw, want) => expect(toNumber(raw)).toBe(want));

  it.each([
    ['2024-03-05', '2024-03-05'],
    ['2024/3/5', '2024-03-05'],
    ['March 5, 2024', '2024-03-05'],
    ['5th Mar 2024', '2024-03-05'],
    ['05.03.2024', '2024-03-05'],
    ['3/5/2024', '2024-03-05'],
    ['25/12/2023', '2023-12-25'],
    ['31.02.2024', undefined],
    ['soon', undefined],
  ])('toDate(%j) = %j', (raw, want) => expect(toDate(raw)).toBe(want));

  it('reads times and booleans', () => {
    expect([toTime('9:30'), toTime('9:30 pm'), toTime('12:05 am'), toTime('25:00')]).toEqual(['09:30:00', '21:30:00', '00:05:00', undefined]);
    expect([toBoolean('Yes'), toBoolean('no.'), toBoolean('✓'), toBoolean('maybe')]).toEqual([true, false, true, undefined]);
  });
});

describe('alterations', () => {
  it('change one thing and keep the kind', () => {
    for (let h = 0; h < 50; h++) {
      const n = alterValue(1234, { type: 'integer' }, h) as number;
      expect(Number.isInteger(n) && n !== 1234 && String(n).length === 4).toBe(true);
      const s = alterValue('INV-0042', { type: 'string' }, h) as string;
      expect([...s].filter((c, i) => c !== 'INV-0042'[i])).toHaveLength(1);
      expect(alterValue('Ada Lovelace', { type: 'string' }, h)).not.toBe('Ada Lovelace');
      expect(alterValue('2024-02-29', { type: 'string', format: 'date' }, h)).toMatch(/^2024-(02-28|03-01)$/);
      expect(alterValue('a', { type: 'string', enum: ['a', 'b'] }, h)).toBe('b');
    }
    expect(alterValue('only', { type: 'string', enum: ['only'] }, 1)).toBeUndefined();
    expect(alterValue(true, { type: 'boolean' }, 1)).toBe(false);
  });
});

describe('flawed texts', () => {
  it('broken JSON never parses; cut-off and looping texts have the budget in tokens', () => {
    for (const json of ['{"a": 1}', '[1, 2]', '{}', '"text"', '12']) {
      for (let bits = 0; bits < 3; bits++) expect(() => JSON.parse(breakJson(json, bits)), `${json} ${bits}`).toThrow();
    }
    for (const budget of [10, 100, 500]) {
      expect(Math.abs(countText(cutoffText('{"a": "start', budget, 7)) - budget)).toBeLessThanOrEqual(2);
      expect(Math.abs(countText(loopText('[header]\n', budget, 7)) - budget)).toBeLessThanOrEqual(2);
    }
    expect(countText(cutoffText('a long start of many words here', 3, 1))).toBeLessThanOrEqual(3);
  });
});

describe('schemas', () => {
  it('resolve $ref, allOf, anyOf with null and type lists', () => {
    const root = {
      $defs: { Base: { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] } },
      properties: {
        merged: { allOf: [{ $ref: '#/$defs/Base' }, { properties: { b: { type: 'integer' } } }] },
        maybe: { anyOf: [{ type: 'null' }, { $ref: '#/$defs/Base' }] },
        list: { type: ['null', 'number'] },
      },
    };
    const merged = resolveNode(root.properties.merged, root);
    expect(merged.type).toBe('object');
    expect(Object.keys(merged.s.properties as object)).toEqual(['a', 'b']);
    expect(merged.s.required).toEqual(['a']);
    expect(resolveNode(root.properties.maybe, root)).toMatchObject({ type: 'object', nullable: true });
    expect(resolveNode(root.properties.list, root)).toMatchObject({ type: 'number', nullable: true });
    expect(resolveNode(root, root).type).toBe('object');
  });

  it('are refused where a grammar compiler refuses them, saying where', () => {
    expect(() => checkSchema({ type: 'object', properties: { a: { type: 'float' } } })).toThrow('#/properties/a: unsupported type "float"');
    expect(() => checkSchema({ properties: { a: { $ref: '#/$defs/X' } } })).toThrow('#/properties/a: cannot resolve $ref "#/$defs/X"');
    expect(() => checkSchema({ required: 'a' })).toThrow('#/required: must be an array of strings');
    expect(() => checkSchema({ anyOf: [] })).toThrow('#/anyOf: must be a non-empty array');
    expect(() => checkSchema([])).toThrow('the schema must be a JSON object');
    // Recursive schemas are fine.
    expect(() => checkSchema({ $defs: { N: { type: 'object', properties: { next: { $ref: '#/$defs/N' } } } }, $ref: '#/$defs/N' })).not.toThrow();
  });
});
