/**
 * Field scoring: a truth object against an output, leaf by leaf. Pure.
 *
 * A leaf is a scalar (string, number, boolean, null) or an empty array or object, at a path such
 * as `total`, `customer.name`, `items[2].amount` (a key that is not a plain word is quoted:
 * `["unit price"]`). Every leaf of the truth is one field; the output's value at the same path
 * is looked up and judged by normalise.ts. Array items are matched by position. Fields the
 * output has and the truth has not are not scored (the truth says what matters). A field's
 * generic name (`items[].amount`) groups its occurrences for per-field accuracy.
 */
import { DEFAULT_NORMALISE, mismatch, type Mismatch, type NormaliseOptions } from './normalise.ts';

export type Segment = string | number;

export interface Leaf {
  /** Exact path, e.g. `items[2].amount`. */
  path: string;
  /** Generic path with array positions left out, e.g. `items[].amount`. */
  field: string;
  segments: Segment[];
  value: unknown;
}

export interface FieldResult {
  path: string;
  field: string;
  segments: Segment[];
  correct: boolean;
  expected: unknown;
  /** The output's value (undefined when absent; shown as null in JSON). */
  got: unknown;
  reason?: Mismatch;
}

/** Every leaf of `value`, depth first, in key order. */
export function leaves(value: unknown): Leaf[] {
  const out: Leaf[] = [];
  const walk = (v: unknown, segments: Segment[]) => {
    if (Array.isArray(v) && v.length > 0) {
      v.forEach((item, i) => walk(item, [...segments, i]));
    } else if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length > 0) {
      for (const [key, item] of Object.entries(v)) walk(item, [...segments, key]);
    } else {
      out.push({ path: formatPath(segments), field: formatPath(segments, true), segments, value: v });
    }
  };
  // Nothing at all (`{}`, `[]`: an empty truth file, a JSONL output whose every page failed) has
  // no fields; an empty object or list inside a value is a field whose value is empty.
  if (typeof value === 'object' && value !== null && Object.keys(value).length === 0) return out;
  walk(value, []);
  return out;
}

/** The value at `segments` in `value`, or undefined. */
export function valueAt(value: unknown, segments: Segment[]): unknown {
  let v = value;
  for (const s of segments) {
    if (typeof s === 'number') {
      if (!Array.isArray(v)) return undefined;
      v = v[s];
    } else {
      if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.hasOwn(v, s)) return undefined;
      v = (v as Record<string, unknown>)[s];
    }
  }
  return v;
}

export function formatPath(segments: Segment[], generic = false): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += generic ? '[]' : `[${s}]`;
    else if (/^[^.[\]"\s]+$/u.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out === '' ? '(root)' : out;
}

/** Scores every leaf of `truth` against `output`; a missing output (undefined) gets every field wrong. */
export function scoreFields(truth: unknown, output: unknown, options: NormaliseOptions = DEFAULT_NORMALISE): FieldResult[] {
  return leaves(truth).map((leaf) => {
    const got = valueAt(output, leaf.segments);
    const reason = output === undefined ? 'missing' : mismatch(leaf.value, got, options);
    const result: FieldResult = { path: leaf.path, field: leaf.field, segments: leaf.segments, correct: reason === null, expected: leaf.value, got };
    if (reason !== null) result.reason = reason;
    return result;
  });
}
