/**
 * Agreement between models on the same document: a quality signal without ground truth. Pure.
 *
 * Fields (outputs that are objects): every leaf path any model has is compared across the
 * models; it agrees when every two models' values count as equal under normalise.ts (so `1,234.50`
 * and `1234.5` agree, as do `2024-03-05` and `March 5, 2024`; a field one model lacks disagrees).
 * Text: per page where every output has page markers, else the whole text; the similarity of two
 * texts is 1 − character edit distance / the longer length (normalised text), a page's is the
 * lowest over pairs of models, and it agrees when that is at least `threshold` and no model's page
 * failed. A model without an output of the document is listed in `missing`.
 * A unit (page, chunk, the whole document) that failed in a model is listed in `failed_units`, and
 * the document does not agree: two models that both have no answer for a page have not agreed on
 * it. A whole text with some failed chunks is still measured on what it has, and fails its page.
 *
 * `compareDocument` is what the writer calls to write `X.compare.json` for one document.
 */
import { EXACT_BUDGET } from './align.ts';
import { leaves, valueAt, type Segment } from './fields.ts';
import { agree, DEFAULT_NORMALISE, type NormaliseOptions } from './normalise.ts';
import type { OutputContent } from './outputs.ts';
import { similarity, type MarkedText } from './text.ts';

export interface CompareOptions extends NormaliseOptions {
  /** Lowest text similarity at which two pages agree. @defaultValue 0.95 */
  threshold: number;
  /** Largest m·n measured exactly (align.ts). @defaultValue EXACT_BUDGET */
  budget?: number;
}

export const DEFAULT_COMPARE: CompareOptions = { ...DEFAULT_NORMALISE, threshold: 0.95 };

/** One model's output of the document; `content` null when it has none. */
export interface ModelOutput {
  model: string;
  content: OutputContent | null;
}

export interface FieldDisagreement {
  path: string;
  field: string;
  /** Model → its value (null when it has none). */
  values: Record<string, unknown>;
}

export interface PageComparison {
  /** Page number, or null for the whole text (not every output has page markers). */
  page: number | null;
  /** Lowest similarity over pairs of models (0 when a model's page failed or is absent). */
  similarity: number;
  /** `A vs B` → similarity. */
  pairs: Record<string, number>;
  agree: boolean;
  /** Models whose page failed or is absent. */
  failed: string[];
}

export interface FieldAgreement {
  compared: number;
  agreeing: number;
  agreement: number;
}

export interface DocumentComparison {
  document: string;
  /** Models compared (those with an output of the kind compared). */
  models: string[];
  /** Models without an output (or with one of the other kind: text against fields). */
  missing: string[];
  kind: 'fields' | 'text' | null;
  fields: number;
  agreeing_fields: number;
  field_agreement: number | null;
  per_field: Record<string, FieldAgreement>;
  disagreements: FieldDisagreement[];
  pages: PageComparison[];
  agreeing_pages: number;
  mean_similarity: number | null;
  /** Model → the units that failed in its output (outputs.ts), for models with any. */
  failed_units: Record<string, string[]>;
  /** Every field and page agrees, no model is missing and no unit failed. */
  agree: boolean;
}

export function compareDocument(document: string, outputs: ModelOutput[], options: CompareOptions = DEFAULT_COMPARE): DocumentComparison {
  const kind = outputs.find((o) => o.content !== null)?.content?.kind ?? null;
  const present = outputs.filter((o) => o.content !== null && o.content.kind === kind);
  const result: DocumentComparison = {
    document,
    models: present.map((o) => o.model),
    missing: outputs.filter((o) => !present.includes(o)).map((o) => o.model),
    kind,
    fields: 0,
    agreeing_fields: 0,
    field_agreement: null,
    per_field: {},
    disagreements: [],
    pages: [],
    agreeing_pages: 0,
    mean_similarity: null,
    failed_units: Object.fromEntries(present.filter((o) => o.content!.failed?.length).map((o) => [o.model, o.content!.failed!])),
    agree: false,
  };
  if (kind === 'fields') compareFields(result, present.map((o) => ({ model: o.model, value: (o.content as { value: unknown }).value })), options);
  if (kind === 'text') comparePages(result, present.map((o) => ({ model: o.model, text: (o.content as { text: MarkedText }).text, partial: (o.content!.failed?.length ?? 0) > 0 })), options);
  result.agree = result.missing.length === 0 && result.disagreements.length === 0 && result.agreeing_pages === result.pages.length && Object.keys(result.failed_units).length === 0;
  return result;
}

function compareFields(result: DocumentComparison, values: Array<{ model: string; value: unknown }>, options: CompareOptions): void {
  const paths = new Map<string, { field: string; segments: Segment[] }>();
  for (const { value } of values) for (const leaf of leaves(value)) if (!paths.has(leaf.path)) paths.set(leaf.path, { field: leaf.field, segments: leaf.segments });
  for (const [path, { field, segments }] of paths) {
    const got = values.map((v) => valueAt(v.value, segments));
    let same = true;
    for (let i = 0; i < got.length && same; i++) for (let j = i + 1; j < got.length && same; j++) same = agree(got[i], got[j], options);
    result.fields++;
    const stat = (result.per_field[field] ??= { compared: 0, agreeing: 0, agreement: 0 });
    stat.compared++;
    if (same) {
      result.agreeing_fields++;
      stat.agreeing++;
    } else {
      result.disagreements.push({ path, field, values: Object.fromEntries(values.map((v, i) => [v.model, got[i] ?? null])) });
    }
    stat.agreement = round(stat.agreeing / stat.compared);
  }
  result.field_agreement = result.fields > 0 ? round(result.agreeing_fields / result.fields) : null;
  result.per_field = Object.fromEntries(Object.entries(result.per_field).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function comparePages(result: DocumentComparison, texts: Array<{ model: string; text: MarkedText; partial: boolean }>, options: CompareOptions): void {
  const budget = options.budget ?? EXACT_BUDGET;
  const paged = texts.every((t) => t.text.pages !== null);
  const numbers = paged ? [...new Set(texts.flatMap((t) => t.text.pages!.map((p) => p.page)))].sort((a, b) => a - b) : [null];
  for (const page of numbers) {
    const versions = texts.map((t) => {
      // The whole text: measured unless it failed as a whole; failed chunks make it fail its page.
      if (page === null) return { model: t.model, text: t.text.text, ok: t.text.failed === undefined, failed: t.partial };
      const p = t.text.pages!.find((x) => x.page === page);
      const ok = p !== undefined && p.failed === undefined;
      return { model: t.model, text: p && !p.failed ? p.text : '', ok, failed: !ok };
    });
    const pairs: Record<string, number> = {};
    let lowest = 1;
    for (let i = 0; i < versions.length; i++) {
      for (let j = i + 1; j < versions.length; j++) {
        const a = versions[i]!;
        const b = versions[j]!;
        const s = a.ok && b.ok ? round(similarity(a.text, b.text, options.caseSensitive, budget)) : 0;
        pairs[`${a.model} vs ${b.model}`] = s;
        lowest = Math.min(lowest, s);
      }
    }
    const failed = versions.filter((v) => v.failed || !v.ok).map((v) => v.model);
    const agrees = failed.length === 0 && lowest >= options.threshold;
    result.pages.push({ page, similarity: lowest, pairs, agree: agrees, failed });
    if (agrees) result.agreeing_pages++;
  }
  result.mean_similarity = result.pages.length > 0 ? round(result.pages.reduce((s, p) => s + p.similarity, 0) / result.pages.length) : null;
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
