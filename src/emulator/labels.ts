/**
 * What a structured-output answer can "read" from a request: the `Label: value` lines of its
 * texts, and the conversion of a value to a JSON Schema type (numbers with currency signs and
 * thousands separators, booleans as yes/no, dates in common spellings to ISO 8601).
 *
 * Labels match names case-insensitively, with `_`, `-` and camelCase humps as spaces:
 * `invoice_number`, `invoiceNumber` and `Invoice-Number` all match a line `Invoice number: 42`.
 * Bullets, `>` quotes, headings and `**bold**` around a label are ignored.
 */

/** `invoice_number`, `InvoiceNumber`, `**Invoice  number**` → `invoice number`. */
export function normalizeLabel(text: string): string {
  return text
    .replace(/([\p{Ll}\p{N}])(\p{Lu})/gu, '$1 $2')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

// An optional bullet/quote/heading, the label (no colon, up to 80 chars, starting with a letter),
// optional bold markers, the colon, the value.
const LABEL_LINE = /^[\s>#*•·|-]*(?:\*\*|__)?(\p{L}[^:\n]{0,79}?)\s*(?:\*\*|__)?\s*[:：]\s*(?:\*\*|__)?\s*(.*?)\s*(?:\*\*|__)?\s*$/u;

function cleanValue(v: string): string {
  const m = /^(["'“‘])(.*)(["'”’])$/su.exec(v);
  return (m ? (m[2] ?? '') : v).trim();
}

/** Every `Label: value` line of some texts, by normalized label, in the order they appear. */
export class LabelIndex {
  private readonly byLabel = new Map<string, string[]>();
  /** First spelling of each label, in order of first appearance. */
  private readonly spelled: [string, string][] = [];

  constructor(texts: readonly string[]) {
    for (const text of texts) {
      for (const line of text.split(/\r?\n/)) {
        const m = LABEL_LINE.exec(line);
        if (!m) continue;
        const value = cleanValue(m[2] ?? '');
        const label = normalizeLabel(m[1] ?? '');
        if (value === '' || label === '') continue;
        let values = this.byLabel.get(label);
        if (!values) {
          values = [];
          this.byLabel.set(label, values);
          this.spelled.push([label, value]);
        }
        values.push(value);
      }
    }
  }

  /** All values of the first of `names` that has any (names are normalized here). */
  all(names: readonly string[]): readonly string[] {
    for (const name of names) {
      const values = this.byLabel.get(normalizeLabel(name));
      if (values) return values;
    }
    return [];
  }

  /** The `occurrence`-th value (0 = first) of the first of `names` that has any. */
  get(names: readonly string[], occurrence = 0): string | undefined {
    return this.all(names)[occurrence];
  }

  /** Labels (normalized) and their first values, in order of appearance. */
  entries(): readonly [string, string][] {
    return this.spelled;
  }
}

/**
 * A number from text: `$1,234.50`, `1.234,50 €`, `1 234`, `-12%`, `(300.00)` (negative). The
 * last of `.` and `,` is the decimal mark when both appear; a lone `,` is decimal unless three
 * digits follow it.
 */
export function toNumber(raw: string): number | undefined {
  const joined = raw.replace(/(\d)[\s'\u00a0\u202f](?=\d{3}\b)/g, '$1');
  const m = /(\()?\s*[$€£¥]?\s*([-−])?\s*[$€£¥]?\s*(\d[\d.,]*)/u.exec(joined);
  if (!m) return undefined;
  let digits = (m[3] ?? '').replace(/[.,]+$/, '');
  const dot = digits.lastIndexOf('.');
  const comma = digits.lastIndexOf(',');
  if (dot >= 0 && comma >= 0) {
    const decimal = dot > comma ? '.' : ',';
    digits = digits.split(decimal === '.' ? ',' : '.').join('');
    if (decimal === ',') digits = digits.replace(',', '.');
  } else if (comma >= 0) {
    const single = digits.indexOf(',') === comma;
    digits = single && digits.length - comma - 1 !== 3 ? digits.replace(',', '.') : digits.replaceAll(',', '');
  } else if (dot >= 0 && digits.indexOf('.') !== dot) {
    digits = digits.replaceAll('.', '');
  }
  const n = Number(digits);
  if (!Number.isFinite(n)) return undefined;
  const negative = m[2] !== undefined || (m[1] !== undefined && /\)/.test(joined.slice(m.index + m[0].length)));
  return negative ? -n : n;
}

const TRUE_WORDS = new Set(['yes', 'y', 'true', 't', '1', 'x', '✓', '✔', 'checked', 'on', 'ja', 'oui', 'si', 'sí']);
const FALSE_WORDS = new Set(['no', 'n', 'false', 'f', '0', 'unchecked', 'off', 'none', 'nein', 'non']);

export function toBoolean(raw: string): boolean | undefined {
  const word = raw.trim().toLowerCase().replace(/[.!]+$/, '');
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  return undefined;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

function monthOf(word: string): number | undefined {
  const i = MONTHS.indexOf(word.slice(0, 3).toLowerCase());
  return i === -1 ? undefined : i + 1;
}

function isoDate(y: number, m: number, d: number): string | undefined {
  if (y < 100) y += y < 70 ? 2000 : 1900;
  const t = new Date(Date.UTC(y, m - 1, d));
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== m - 1 || t.getUTCDate() !== d) return undefined;
  return t.toISOString().slice(0, 10);
}

/**
 * `YYYY-MM-DD` from `2024-03-05`, `2024/3/5`, `March 5, 2024`, `5 Mar 2024`, `05.03.2024`
 * (day first with dots) or `3/5/2024` (month first with slashes, unless the first is above 12).
 */
export function toDate(raw: string): string | undefined {
  let m = /(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})/.exec(raw);
  if (m) return isoDate(Number(m[1]), Number(m[2]), Number(m[3]));
  m = /(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})\b/.exec(raw);
  if (m) {
    const [a, b, y] = [Number(m[1]), Number(m[3]), Number(m[4])];
    const dayFirst = m[2] === '.' || a > 12;
    return dayFirst ? isoDate(y, b, a) : isoDate(y, a, b);
  }
  m = /\b(\p{L}{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b/u.exec(raw);
  if (m && monthOf(m[1] ?? '') !== undefined) return isoDate(Number(m[3]), monthOf(m[1] ?? '') as number, Number(m[2]));
  m = /\b(\d{1,2})(?:st|nd|rd|th)?\.?\s+(\p{L}{3,9})\.?,?\s+(\d{4})\b/u.exec(raw);
  if (m && monthOf(m[2] ?? '') !== undefined) return isoDate(Number(m[3]), monthOf(m[2] ?? '') as number, Number(m[1]));
  return undefined;
}

/** `HH:MM:SS` from `9:30`, `09:30:15`, `9:30 pm`. */
export function toTime(raw: string): string | undefined {
  const m = /\b(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([ap]\.?m\.?)?/i.exec(raw);
  if (!m) return undefined;
  let h = Number(m[1]);
  const pm = m[4]?.toLowerCase().startsWith('p');
  if (m[4] !== undefined && h === 12) h = pm ? 12 : 0;
  else if (pm) h += 12;
  const min = Number(m[2]);
  const s = Number(m[3] ?? 0);
  if (h > 23 || min > 59 || s > 59) return undefined;
  return [h, min, s].map((n) => String(n).padStart(2, '0')).join(':');
}
