/**
 * Every normaliser against hand-worked values: text, numbers, dates, and the judgement of one
 * truth leaf against an output value (which reading the truth chooses, and why a value misses).
 */
import { describe, expect, it } from 'vitest';
import { parseDate, sameDate } from '../../src/eval/dates.ts';
import { agree, mismatch, normaliseText, parseNumber } from '../../src/eval/normalise.ts';

describe('normaliseText', () => {
  it.each([
    ['  Acme\t\n Corp  ', 'acme corp'],
    ['ACME CORP', 'acme corp'],
    ['of\u00a0the', 'of the'], // no-break space
    ['\ufb01nal', 'final'], // the ligature ﬁ (NFKC)
    ['\uff21\uff22\uff23', 'abc'], // full-width letters
    ['', ''],
  ])('%j → %j', (input, expected) => {
    expect(normaliseText(input)).toBe(expected);
  });

  it('keeps case when asked', () => {
    expect(normaliseText('  Acme  Corp ', true)).toBe('Acme Corp');
  });

  it('ß is SS without case; invisible characters (soft hyphen, zero-width space, BOM) are nothing', () => {
    // Each pair differed: a German address printed in capitals, a word with the soft hyphen of a
    // PDF's text layer, a zero-width space from a web page.
    expect(mismatch('Hauptstraße 5', 'HAUPTSTRASSE 5')).toBe(null);
    expect(agree('Gießen', 'GIESSEN')).toBe(true);
    expect(mismatch('Rechnungsnummer', 'Rechnungs\u00adnummer')).toBe(null);
    expect(mismatch('Acme Corp', 'Acme\u200b Corp\ufeff')).toBe(null);
    expect(mismatch('Acme Corp', 'Acme\u00ad Corp', { tolerance: 0, caseSensitive: true })).toBe(null);
    // Case still counts when asked; other letters still differ.
    expect(mismatch('Straße', 'STRASSE', { tolerance: 0, caseSensitive: true })).toBe('differs');
    expect(mismatch('Straße', 'Strasse 2')).toBe('differs');
  });
});

describe('parseNumber', () => {
  it.each<[unknown, number | null]>([
    [1234.5, 1234.5],
    ['1234.5', 1234.5],
    ['1,234.50', 1234.5],
    ['1,234', 1234], // a lone comma before three digits groups thousands
    ['1,5', 1.5], // otherwise it is a decimal comma
    ['1.234,50', 1234.5],
    ['1.234.567', 1234567],
    ['1 234,50', 1234.5],
    ['1\u202f234.50', 1234.5], // narrow no-break space (NFKC → space)
    ["1'234.50", 1234.5],
    ['$1,234.50', 1234.5],
    ['1,234.50 €', 1234.5],
    ['EUR 12', 12],
    ['US$ 7', 7],
    ['-5', -5],
    ['-$5.00', -5],
    ['\u22125.00', -5], // the minus sign (U+2212) PDFs and typeset tables print, which NFKC keeps
    ['\u2212$1,234.50', -1234.5],
    ['$\u22125', -5],
    ['$-5.00', -5],
    ['(12.00)', -12],
    ['12 %', 12],
    ['.5', 0.5],
    ['1.5e3', 1500],
    ['0.25', 0.25],
    ['0', 0],
    ['007', null], // a leading zero before a digit: an identifier
    ['02134', null],
    ['INV123', null],
    ['12 apples', null],
    ['1,23,4', null],
    ['', null],
    [Number.NaN, null],
    [true, null],
    [null, null],
  ])('%j → %j', (input, expected) => {
    expect(parseNumber(input)).toBe(expected);
  });
});

describe('parseDate', () => {
  const iso = (s: string) => parseDate(s)?.map((r) => `${r.iso}/${r.order}`) ?? null;
  it.each<[string, string[] | null]>([
    ['2024-03-05', ['2024-03-05/any']],
    ['2024/3/5', ['2024-03-05/any']],
    ['2024.03.05', ['2024-03-05/any']],
    ['2024-03-05T10:00:00Z', ['2024-03-05/any']],
    ['2024-03-05 23:59', ['2024-03-05/any']],
    ['05.03.2024', ['2024-03-05/any']],
    ['5.3.24', ['2024-03-05/any']],
    ['03/05/2024', ['2024-03-05/mdy', '2024-05-03/dmy']],
    ['13/05/2024', ['2024-05-13/any']],
    ['05/13/2024', ['2024-05-13/any']],
    ['07-04-99', ['1999-07-04/mdy', '1999-04-07/dmy']],
    ['04/04/2024', ['2024-04-04/mdy', '2024-04-04/dmy']],
    ['March 5, 2024', ['2024-03-05/any']],
    ['Mar 5 2024', ['2024-03-05/any']],
    ['Sept. 5th, 2024', ['2024-09-05/any']],
    ['5 March 2024', ['2024-03-05/any']],
    ['5-Mar-2024', ['2024-03-05/any']],
    ['2024 Mar 5', ['2024-03-05/any']],
    ['Tuesday, March 5, 2024', ['2024-03-05/any']],
    ['29 Feb 2024', ['2024-02-29/any']],
    ['29 Feb 2023', null], // not a calendar date
    ['2024-13-01', null],
    ['31/04/2024', null],
    ['March 2024', null],
    ['2024', null],
    ['5 Smarch 2024', null],
    ['hello world', null],
  ])('%j → %j', (input, expected) => {
    expect(iso(input)).toEqual(expected);
  });

  it('two dates are the same when they share a reading under one convention', () => {
    const d = (s: string) => parseDate(s)!;
    expect(sameDate(d('03/05/2024'), d('2024-03-05'))).toBe(true); // month first
    expect(sameDate(d('03/05/2024'), d('2024-05-03'))).toBe(true); // day first
    expect(sameDate(d('03/05/2024'), d('2024-03-06'))).toBe(false);
    expect(sameDate(d('03/05/2024'), d('03-05-2024'))).toBe(true);
    // 03/05 read month first is March 5; 05/03 read month first is May 3: never the same way.
    expect(sameDate(d('03/05/2024'), d('05/03/2024'))).toBe(false);
  });
});

describe('mismatch: one truth leaf against an output value', () => {
  it.each<[unknown, unknown, string | null]>([
    // text
    ['Acme Corp', ' acme   CORP ', null],
    ['Acme Corp', 'Acme Corp.', 'differs'],
    // numbers
    [1234.5, '1,234.50', null],
    [1234.5, '$1,234.50', null],
    ['1,234.50', 1234.5, null],
    ['1,234.50', '1234.5', null],
    [1234.5, 1234.51, 'differs'],
    [1234.5, 'about 1234', 'differs'],
    [0.1 + 0.2, 0.3, null], // floating-point noise is not a difference
    ['12', 'twelve', 'differs'],
    // identifiers that look like numbers stay text
    ['02134', '2134', 'differs'],
    ['02134', '02134', null],
    // dates
    ['2024-03-05', 'March 5, 2024', null],
    ['2024-03-05', '05.03.2024', null],
    ['2024-03-05', '2024-03-06', 'differs'],
    ['2024-03-05', 'sometime in March', 'differs'],
    // no value
    [null, null, null],
    [null, undefined, null],
    [null, '  ', null],
    [null, 'something', 'unexpected'],
    ['', null, null],
    ['Acme', undefined, 'missing'],
    ['Acme', null, 'missing'],
    [5, '', 'missing'],
    // empty containers
    [[], [], null],
    [[], undefined, null],
    [{}, [1], 'unexpected'],
    // booleans
    [true, true, null],
    [true, 'yes', null],
    [false, 'no', null],
    [true, false, 'differs'],
    [true, 'maybe', 'differs'],
    // a truth written as a word or digit, an output as a JSON boolean
    ['yes', true, null],
    ['No', false, null],
    ['1', true, null],
    ['true', false, 'differs'],
    ['Acme', true, 'differs'],
    // an object where a scalar should be
    ['Acme', { name: 'Acme' }, 'differs'],
  ])('truth %j, output %j → %j', (truth, got, expected) => {
    expect(mismatch(truth, got)).toBe(expected);
  });

  it('numbers within the tolerance are equal, beyond it not', () => {
    expect(mismatch(100, 100.01, { tolerance: 0.01, caseSensitive: false })).toBe(null);
    expect(mismatch(100, 100.02, { tolerance: 0.01, caseSensitive: false })).toBe('differs');
    expect(mismatch(100, '99.99', { tolerance: 0.01, caseSensitive: false })).toBe(null);
  });

  it('large numbers: one digit off is not equal; more than 15 digits are an identifier, compared as text', () => {
    // A relative 1e-9 "noise" made each of these pairs equal (and two models agree on them).
    expect(mismatch('5551234567', '5551234568')).toBe('differs'); // a phone or order number
    expect(mismatch(5551234567, 5551234568)).toBe('differs');
    expect(mismatch(1234567890.5, 1234567890.9)).toBe('differs');
    expect(mismatch('4111111111111111', '4111111111111112')).toBe('differs'); // 16 digits: within 4e6
    expect(mismatch('12345678901234567890', '12345678901234567891')).toBe('differs'); // one double
    expect(agree('4111 1111 1111 1111', '4111111111111112')).toBe(false);
    // Still equal: the same value written otherwise, and floating-point noise.
    expect(mismatch('12345678901234567890', ' 12345678901234567890 ')).toBe(null);
    expect(mismatch('5,551,234,567', 5551234567)).toBe(null);
    expect(mismatch(0.3, 0.1 + 0.2)).toBe(null);
    expect(mismatch(1e21, 1e21)).toBe(null);
  });

  it('a long number written as a JSON number on one side and a string on the other: the same digits are equal', () => {
    // A truth file holding a card or account number as a number, the model answering a string
    // (the schema's type): 'differs', though the digits are the same; the other way round was
    // equal, so compare said two such outputs disagreed.
    expect(mismatch(4111111111111111, '4111111111111111')).toBe(null);
    expect(mismatch('4111111111111111', 4111111111111111)).toBe(null);
    expect(agree(4111111111111111, '4111111111111111')).toBe(true);
    expect(mismatch(4111111111111111, '4111111111111112')).toBe('differs');
    expect(mismatch(12, 'twelve')).toBe('differs');
  });

  it('two whole numbers past 2^50 one apart are not equal (no last-place allowance for integers)', () => {
    // Four units in the last place of a double are 4 at 16 digits: two card numbers as JSON numbers one apart were equal.
    expect(mismatch(4111111111111111, 4111111111111112)).toBe('differs');
    expect(agree(4111111111111111, 4111111111111113)).toBe(false);
    expect(mismatch(4111111111111111, 4111111111111111)).toBe(null);
    expect(mismatch(4111111111111111, 4111111111111112, { tolerance: 1, caseSensitive: false })).toBe(null);
    expect(mismatch(3, 0.1 * 30)).toBe(null); // noise of a computed value still allowed
  });

  it('case counts when asked', () => {
    expect(mismatch('Acme', 'ACME', { tolerance: 0, caseSensitive: true })).toBe('differs');
    expect(mismatch('Acme', ' Acme ', { tolerance: 0, caseSensitive: true })).toBe(null);
  });

  it('agree is symmetric: each value must count as the other', () => {
    expect(agree('1,234.50', 1234.5)).toBe(true);
    expect(agree(1234.5, '1,234.50')).toBe(true);
    expect(agree('March 5, 2024', '2024-03-05')).toBe(true);
    expect(agree(null, 'x')).toBe(false);
    expect(agree('x', null)).toBe(false);
    expect(agree(undefined, null)).toBe(true);
    expect(agree(true, 'yes')).toBe(true);
    expect(agree('yes', true)).toBe(true);
    expect(agree('True', true)).toBe(true);
    expect(agree(false, 'yes')).toBe(false);
  });
});
