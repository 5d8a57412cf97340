/**
 * `docbatch compare`'s figures: every document that two or more models produced, compared
 * (compare.ts), and the totals: field agreement overall and per field, page agreement and mean
 * similarity, the documents where the models disagree with the fields and pages they disagree on,
 * and the documents only some models have. Reads output files; otherwise pure.
 *
 * Documents are matched across models by their key (discover.ts: X, or the source's base name).
 * A model's output of a document is its `.json`, else `.jsonl`, else `.md`.
 *
 * `compareDocumentFiles` is the writer's way to `X.compare.json`: compareDocument on output files.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { DocbatchError } from '../errors.ts';
import { compareDocument, DEFAULT_COMPARE, type CompareOptions, type DocumentComparison, type FieldAgreement, type FieldDisagreement, type ModelOutput, type PageComparison } from './compare.ts';
import type { Discovery, FoundOutput } from './discover.ts';
import { parseOutput } from './outputs.ts';

export interface Disagreement {
  document: string;
  /** Model → output file relative to OUT_DIR. */
  outputs: Record<string, string>;
  fields: FieldDisagreement[];
  /** Pages below the threshold or failed in a model. */
  pages: PageComparison[];
  /** Model → the units that failed in its output (pages, `<conversation_id>#<chunk>`, `document`). */
  failed_units: Record<string, string[]>;
}

export interface RunComparison {
  out_dir: string;
  models: string[];
  threshold: number;
  tolerance: number;
  case_sensitive: boolean;
  /** Documents that two or more models produced. */
  documents: number;
  /** Of those, documents on which every field and page agrees. */
  agreeing_documents: number;
  fields: number;
  agreeing_fields: number;
  field_agreement: number | null;
  pages: number;
  agreeing_pages: number;
  page_agreement: number | null;
  mean_page_similarity: number | null;
  per_field: Record<string, FieldAgreement>;
  disagreements: Disagreement[];
  /** Documents not every model produced: who has them and who has not. */
  only_in: Array<{ document: string; models: string[]; missing: string[] }>;
  problems: Array<{ code: string; file: string | null; message: string }>;
}

export function compareRun(found: Discovery, options: CompareOptions): RunComparison {
  const problems: DocbatchError[] = [...found.problems];
  // A document is compared with the same document under the same task: two runs of one file
  // under different tasks (another prompt, another seed) are two comparisons, each labelled with
  // its task when a file has several.
  const tasksOf = new Map<string, Set<string>>();
  for (const o of found.outputs) tasksOf.set(o.key, (tasksOf.get(o.key) ?? new Set()).add(o.report.task?.hash ?? ''));
  const labelOf = (o: FoundOutput) => ((tasksOf.get(o.key)?.size ?? 0) > 1 ? `${o.key} [task ${o.report.task?.name ?? '?'} ${(o.report.task?.hash ?? '').slice(0, 8)}]` : o.key);
  const byKey = new Map<string, Map<string, FoundOutput>>();
  for (const o of found.outputs) {
    const label = labelOf(o);
    const models = byKey.get(label) ?? new Map<string, FoundOutput>();
    const seen = models.get(o.model);
    if (seen) {
      problems.push(new DocbatchError('EVAL_BAD_OUTPUT', `two outputs of "${label}" by ${o.model} (${seen.reportPath}, ${o.reportPath}); comparing the first`, { place: { file: o.reportPath } }));
      continue;
    }
    models.set(o.model, o);
    byKey.set(label, models);
  }
  const run: RunComparison = {
    out_dir: found.outDir,
    models: found.models,
    threshold: options.threshold,
    tolerance: options.tolerance,
    case_sensitive: options.caseSensitive,
    documents: 0,
    agreeing_documents: 0,
    fields: 0,
    agreeing_fields: 0,
    field_agreement: null,
    pages: 0,
    agreeing_pages: 0,
    page_agreement: null,
    mean_page_similarity: null,
    per_field: {},
    disagreements: [],
    only_in: [],
    problems: [],
  };
  let similaritySum = 0;
  for (const key of [...byKey.keys()].sort()) {
    const docs = byKey.get(key)!;
    const outputs: ModelOutput[] = found.models.map((model) => ({ model, content: contentOf(docs.get(model), problems) }));
    const c = compareDocument(key, outputs, options);
    if (c.missing.length > 0) run.only_in.push({ document: key, models: c.models, missing: c.missing });
    if (c.models.length < 2) continue;
    add(run, c);
    similaritySum += c.pages.reduce((s, p) => s + p.similarity, 0);
    if (c.disagreements.length > 0 || c.agreeing_pages < c.pages.length || Object.keys(c.failed_units).length > 0) {
      run.disagreements.push({
        document: key,
        outputs: Object.fromEntries(c.models.map((m) => [m, relative(found.outDir, outputFile(docs.get(m)!)!)])),
        fields: c.disagreements,
        pages: c.pages.filter((p) => !p.agree),
        failed_units: c.failed_units,
      });
    } else run.agreeing_documents++;
  }
  const r = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 1e6) / 1e6 : null);
  run.field_agreement = r(run.agreeing_fields, run.fields);
  run.page_agreement = r(run.agreeing_pages, run.pages);
  run.mean_page_similarity = r(similaritySum, run.pages);
  run.per_field = Object.fromEntries(Object.entries(run.per_field).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  for (const stat of Object.values(run.per_field)) stat.agreement = r(stat.agreeing, stat.compared)!;
  run.problems = problems.map((p) => ({ code: p.code, file: p.place?.file ?? null, message: p.describe() }));
  return run;
}

/**
 * `X.compare.json` for one document from its output files: what the writer calls once every
 * model's output of the document is written. `path` null (or a file that is absent or unreadable)
 * means the model has no output; the comparison then lists it in `missing`.
 */
export function compareDocumentFiles(document: string, files: Array<{ model: string; path: string | null }>, options: CompareOptions = DEFAULT_COMPARE): DocumentComparison {
  const outputs = files.map(({ model, path }): ModelOutput => {
    if (path === null) return { model, content: null };
    try {
      return { model, content: parseOutput(path, readFileSync(path, 'utf8')) };
    } catch {
      return { model, content: null };
    }
  });
  return compareDocument(document, outputs, options);
}

function add(run: RunComparison, c: DocumentComparison): void {
  run.documents++;
  run.fields += c.fields;
  run.agreeing_fields += c.agreeing_fields;
  run.pages += c.pages.length;
  run.agreeing_pages += c.agreeing_pages;
  for (const [field, stat] of Object.entries(c.per_field)) {
    const total = (run.per_field[field] ??= { compared: 0, agreeing: 0, agreement: 0 });
    total.compared += stat.compared;
    total.agreeing += stat.agreeing;
  }
}

function outputFile(o: FoundOutput | undefined): string | undefined {
  return o?.files.json ?? o?.files.jsonl ?? o?.files.md;
}

function contentOf(o: FoundOutput | undefined, problems: DocbatchError[]): ModelOutput['content'] {
  const path = outputFile(o);
  if (path === undefined) return null;
  try {
    return parseOutput(path, readFileSync(path, 'utf8'));
  } catch (err) {
    problems.push(err instanceof DocbatchError ? err : new DocbatchError('EVAL_BAD_OUTPUT', (err as Error).message, { cause: err, place: { file: path } }));
    return null;
  }
}
