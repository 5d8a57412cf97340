/**
 * When a value from a model's output counts as the value in the truth. Pure; no I/O.
 *
 * - Text: Unicode NFKC (ligatures, full-width forms, no-break spaces become plain), invisible
 *   characters dropped (soft hyphens, zero-width spaces), runs of whitespace collapsed to one
 *   space, trimmed, and case-insensitive unless `caseSensitive` (ß = SS).
 * - Numbers: a JSON number, or a string in a common amount form: `1,234.50`, `1 234,50`,
 *   `1.234,50`, `$1,234.50`, `EUR 12` (ISO codes of common currencies), `12 %`, `(12.00)` (negative), `-5`, `1.5e3`. A lone comma
 *   followed by exactly three digits groups thousands (`1,234` = 1234); otherwise a single comma
 *   is a decimal comma (`1,5` = 1.5). A string with a leading zero before a digit (`007`, `02134`)
 *   is an identifier, not a number; so is one of more than 15 digits (a double cannot hold it:
 *   card, account and tracking numbers), compared as text. Two numbers are equal when they
 *   differ by at most `tolerance` (plus a few units in the last place of a double).
 * - Dates: see dates.ts; compared as calendar dates.
 * - No value: null, a missing field and a blank string are all "no value", and equal each other.
 * - Booleans: true/false, or the strings true/false/yes/no/1/0 (on either side: a truth "yes" is
 *   an output's true, and two models' true and "yes" agree).
 * - A minus sign may be `-` or U+2212 `−`.
 * The truth decides how a value is read: a truth string that is a date is compared as a date, a
 * truth number (or numeric string) as a number; everything else as text.
 */
import { parseDate, sameDate } from './dates.ts';

export interface NormaliseOptions {
  /** Largest difference at which two numbers are still equal. @defaultValue 0 */
  tolerance: number;
  /** Compare text with its case. @defaultValue false */
  caseSensitive: boolean;
}

export const DEFAULT_NORMALISE: NormaliseOptions = { tolerance: 0, caseSensitive: false };

/** Why a value does not count as the truth's. */
export type Mismatch =
  /** The truth has a value; the output has none (missing field, null, blank). */
  | 'missing'
  /** The truth has no value; the output has one. */
  | 'unexpected'
  /** Both have a value and they differ (or are of kinds that cannot be equal). */
  | 'differs';

/** Characters that show nothing: soft hyphens of PDF text layers, zero-width spaces and joiners, variation selectors, BOMs. */
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/gu;

/**
 * Case is folded through upper case: `toLowerCase` alone leaves `ß`, so "Hauptstraße" and
 * "HAUPTSTRASSE" (an address printed in capitals) differed where "Acme" and "ACME" do not.
 */
export function normaliseText(text: string, caseSensitive = false): string {
  const t = text.normalize('NFKC').replace(INVISIBLE, '').replace(/\s+/gu, ' ').trim();
  return caseSensitive ? t : t.toUpperCase().toLowerCase();
}

export function isBlank(v: unknown): boolean {
  return v === undefined || v === null || (typeof v === 'string' && v.trim() === '');
}

function isEmptyContainer(v: unknown): boolean {
  return typeof v === 'object' && v !== null && (Array.isArray(v) ? v.length === 0 : Object.keys(v).length === 0);
}

const CODES = 'USD|EUR|GBP|JPY|CHF|CAD|AUD|NZD|CNY|HKD|SGD|INR|SEK|NOK|DKK|PLN|CZK|HUF|BRL|MXN|ZAR|RUB|KRW|TRY|ILS|AED|SAR';
const SYMBOL = new RegExp(`^(?:[$€£¥₹₩₽¢]|(?:${CODES})\\s?|[A-Z]{1,2}\\$)`);
const SYMBOL_AFTER = new RegExp(`(?:\\s?[$€£¥₹₩₽¢]|\\s?(?:${CODES}))$`);

/** The number a value stands for, or null when it is not one. */
export function parseNumber(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value !== 'string') return null;
  // NFKC keeps U+2212 MINUS SIGN, the minus of typeset tables and of text copied from PDFs.
  let s = value.normalize('NFKC').replace(/\u2212/g, '-').trim();
  let negative = false;
  const paren = /^\((.*)\)$/.exec(s);
  if (paren) {
    negative = true;
    s = paren[1]!.trim();
  }
  const sign = () => {
    const m = /^([+-])\s*/.exec(s);
    if (m) {
      if (m[1] === '-') negative = !negative;
      s = s.slice(m[0].length);
    }
  };
  sign();
  s = s.replace(SYMBOL, '');
  sign();
  s = s.replace(SYMBOL_AFTER, '').replace(/\s?%$/, '').trim();
  const n = parseBody(s);
  if (n === null) return null;
  return negative ? -n : n;
}

/** Significant digits a double holds exactly: a string with more is an identifier (card, account, tracking numbers). */
const MAX_DIGITS = 15;

function parseBody(s: string): number | null {
  if (s === '' || /^0\d/.test(s)) return null;
  if (s.replace(/e[+-]?\d+$/i, '').replace(/\D/g, '').replace(/^0+/, '').length > MAX_DIGITS) return null;
  if (/^\d{1,3}(?:,\d{3})+(?:\.\d+)?$/.test(s)) return Number(s.replace(/,/g, ''));
  if (/^\d{1,3}(?:[ '’]\d{3})+(?:[.,]\d+)?$/.test(s)) return Number(s.replace(/[ '’]/g, '').replace(',', '.'));
  if (/^\d{1,3}(?:\.\d{3})+,\d+$/.test(s) || /^\d{1,3}(?:\.\d{3}){2,}$/.test(s)) return Number(s.replace(/\./g, '').replace(',', '.'));
  if (/^\d+(?:[.,]\d+)?$/.test(s)) return Number(s.replace(',', '.'));
  if (/^(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i.test(s)) return Number(s);
  return null;
}

function parseBoolean(v: unknown): boolean | null {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v === 1 ? true : v === 0 ? false : null;
  if (typeof v !== 'string') return null;
  const t = v.trim().toLowerCase();
  if (t === 'true' || t === 'yes' || t === '1') return true;
  if (t === 'false' || t === 'no' || t === '0') return false;
  return null;
}

/**
 * Equal within `tolerance`, plus a few units in the last place (the noise of a value like
 * 0.1 + 0.2 computed by whoever wrote it). Not a relative 1e-9: that made 5551234567 equal
 * 5551234568 (±5.5 at ten digits), and any two 16-digit card numbers within millions equal.
 */
function sameNumber(a: number, b: number, tolerance: number): boolean {
  // Two whole numbers carry no noise: past 2^50 four units in the last place are whole units
  // (two 16-digit card numbers one apart were equal).
  const noise = Number.isInteger(a) && Number.isInteger(b) ? 0 : 4 * Number.EPSILON * Math.max(Math.abs(a), Math.abs(b));
  return Math.abs(a - b) <= tolerance + noise;
}

/** null when `got` counts as `truth`, else why not. `truth` is a leaf: a scalar or an empty array/object. */
export function mismatch(truth: unknown, got: unknown, options: NormaliseOptions = DEFAULT_NORMALISE): Mismatch | null {
  if (isBlank(truth) || isEmptyContainer(truth)) return isBlank(got) || isEmptyContainer(got) ? null : 'unexpected';
  if (isBlank(got)) return 'missing';
  if (typeof got === 'object') return 'differs';
  if (typeof truth === 'boolean') return parseBoolean(got) === truth ? null : 'differs';
  // A truth written as a word ("yes", "1") against a JSON boolean: both read as booleans.
  if (typeof got === 'boolean') return parseBoolean(truth) === got ? null : 'differs';
  if (typeof truth === 'string') {
    const date = parseDate(truth);
    if (date && typeof got === 'string') {
      const other = parseDate(got);
      if (other) return sameDate(date, other) ? null : 'differs';
    }
  }
  const t = parseNumber(truth);
  if (t !== null && (typeof truth === 'number' || typeof got === 'number' || parseNumber(got) !== null)) {
    const g = parseNumber(got);
    // A string read as no number (more than 15 digits: an identifier) against a JSON number is
    // compared as text with the number's own digits, as it is the other way round.
    if (g === null && typeof truth === 'number' && typeof got === 'string') return normaliseText(String(truth)) === normaliseText(got) ? null : 'differs';
    return g !== null && sameNumber(t, g, options.tolerance) ? null : 'differs';
  }
  if (typeof truth === 'number') return 'differs';
  return normaliseText(String(truth), options.caseSensitive) === normaliseText(String(got), options.caseSensitive) ? null : 'differs';
}

/** Whether two outputs agree on a value: each counts as the other's (used to compare models). */
export function agree(a: unknown, b: unknown, options: NormaliseOptions = DEFAULT_NORMALISE): boolean {
  return mismatch(a, b, options) === null && mismatch(b, a, options) === null;
}
