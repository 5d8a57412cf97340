/**
 * `docbatch eval`'s figures: every truth file against every model's output of the same name,
 * as the report object that `--json` prints. Reads output files; otherwise pure.
 *
 * Per model: `documents` (truth documents, by name), `fields` (truth leaves scored, over all
 * documents), `field_accuracy` (correct / fields), `cer` and `wer` (edits over truth length,
 * summed over pages and documents), per-field accuracy by generic path (`items[].amount`),
 * per-document detail (the wrong fields with expected and got; per-page rates), and `missing`:
 * truth documents the model has no usable output for. A missing output counts as wrong: all its
 * fields wrong, all its truth text deleted.
 */
import { readFileSync } from 'node:fs';
import { basename, relative } from 'node:path';
import { DocbatchError } from '../errors.ts';
import { EXACT_BUDGET } from './align.ts';
import type { Discovery, FoundOutput } from './discover.ts';
import { formatPath, scoreFields } from './fields.ts';
import type { Mismatch, NormaliseOptions } from './normalise.ts';
import { parseOutput, type ContentKind } from './outputs.ts';
import { ratio, scoreText, sum, type PageScore, type TextCounts } from './text.ts';
import type { Truth, TruthSet } from './truth.ts';

export interface EvalOptions extends NormaliseOptions {
  /** Score only this served model. */
  model?: string;
  /** Largest m·n measured exactly (align.ts). @defaultValue EXACT_BUDGET */
  budget?: number;
}

export interface WrongField {
  path: string;
  expected: unknown;
  got: unknown;
  reason: Mismatch;
}

export interface DocumentResult {
  document: string;
  /** Truth file name. */
  truth: string;
  /** Output file relative to OUT_DIR, null when missing. */
  output: string | null;
  status: 'scored' | 'missing';
  /** Why the output is missing. */
  reason?: string;
  fields?: number;
  correct_fields?: number;
  field_accuracy?: number | null;
  wrong?: WrongField[];
  chars?: number;
  char_edits?: number;
  cer?: number | null;
  words?: number;
  word_edits?: number;
  wer?: number | null;
  /** False when a long text without page markers was aligned by anchoring (align.ts). */
  exact?: boolean;
  pages?: PageScore[] | null;
  unscored_pages?: number[];
}

export interface FieldStat {
  fields: number;
  correct: number;
  accuracy: number;
}

export interface ModelResult {
  documents: number;
  missing_outputs: number;
  fields: number;
  correct_fields: number;
  field_accuracy: number | null;
  text_documents: number;
  pages: number;
  chars: number;
  char_edits: number;
  cer: number | null;
  words: number;
  word_edits: number;
  wer: number | null;
  exact: boolean;
  folders: string[];
  per_field: Record<string, FieldStat>;
  /**
   * Truth keyed by page or chunk (for X.jsonl outputs: `{"1": {...}, "2": {...}}`): the same per
   * generic path with the page or chunk left out (`total` over every page, where per_field has
   * `1.total`, `2.total`, ...); truth of whole documents counts as in per_field.
   */
  per_field_across_units: Record<string, FieldStat>;
  per_document: DocumentResult[];
  missing: Array<{ document: string; truth: string; reason: string }>;
  /** Outputs of this model that no truth file names (not scored). */
  unscored_outputs: string[];
}

export interface EvalReport {
  out_dir: string;
  truth_dir: string;
  tolerance: number;
  case_sensitive: boolean;
  models: Record<string, ModelResult>;
  /** Files that could not be used, with their code: bad truth files, unreadable outputs, ambiguous names. */
  problems: Array<{ code: string; file: string | null; message: string }>;
}

export function evaluate(truth: TruthSet, found: Discovery, options: EvalOptions): EvalReport {
  const problems: DocbatchError[] = [...truth.problems, ...found.problems];
  const models: Record<string, ModelResult> = {};
  const names = options.model === undefined ? found.models : found.models.filter((m) => m === options.model);
  for (const model of names) {
    const outputs = found.outputs.filter((o) => o.model === model);
    models[model] = scoreModel(truth, outputs, found, options, problems);
    models[model].folders = found.folders[model] ?? [];
  }
  return {
    out_dir: found.outDir,
    truth_dir: truth.dir,
    tolerance: options.tolerance,
    case_sensitive: options.caseSensitive,
    models,
    problems: problems.map((p) => ({ code: p.code, file: p.place?.file ?? null, message: p.describe() })),
  };
}

function scoreModel(truth: TruthSet, outputs: FoundOutput[], found: Discovery, options: EvalOptions, problems: DocbatchError[]): ModelResult {
  const perDocument: DocumentResult[] = [];
  const stats = new Map<string, FieldStat>();
  const across = new Map<string, FieldStat>();
  const answered = new Set<FoundOutput>();
  const byName = new OutputNames(outputs);
  for (const t of truth.truths) {
    const candidates = byName.answering(t.key);
    for (const c of candidates) answered.add(c);
    const match = pick(t.key, candidates, problems);
    const want: ContentKind = t.fields ? 'fields' : 'text';
    const loaded = match ? load(match, want, found.outDir, problems) : { content: null, reason: 'no report of this name', file: null };
    perDocument.push(scoreOne(t, truth.dir, loaded, options, stats, across));
  }
  const fieldDocs = perDocument.filter((d) => d.fields !== undefined);
  const textDocs = perDocument.filter((d) => d.chars !== undefined);
  const fields = fieldDocs.reduce((n, d) => n + d.fields!, 0);
  const correct = fieldDocs.reduce((n, d) => n + d.correct_fields!, 0);
  const text = sum(textDocs.map((d) => d as TextCounts));
  const perField: Record<string, FieldStat> = {};
  for (const field of [...stats.keys()].sort()) perField[field] = stats.get(field)!;
  const perFieldAcross: Record<string, FieldStat> = {};
  for (const field of [...across.keys()].sort()) perFieldAcross[field] = across.get(field)!;
  const missing = perDocument.filter((d) => d.status === 'missing').map((d) => ({ document: d.document, truth: d.truth, reason: d.reason! }));
  return {
    documents: new Set(perDocument.map((d) => d.document)).size,
    missing_outputs: new Set(missing.map((m) => m.document)).size,
    fields,
    correct_fields: correct,
    field_accuracy: round(ratio(correct, fields)),
    text_documents: textDocs.length,
    pages: textDocs.reduce((n, d) => n + (d.pages ? d.pages.length : 0), 0),
    chars: text.chars,
    char_edits: text.char_edits,
    cer: round(ratio(text.char_edits, text.chars)),
    words: text.words,
    word_edits: text.word_edits,
    wer: round(ratio(text.word_edits, text.words)),
    exact: text.exact,
    folders: [],
    per_field: perField,
    per_field_across_units: perFieldAcross,
    per_document: perDocument,
    missing,
    unscored_outputs: outputs.filter((o) => !answered.has(o)).map((o) => relative(found.outDir, o.reportPath)).sort(),
  };
}

/**
 * Truth keyed by page (`"1"`) or chat chunk (`"<conversation_id>#<chunk>"`), as an X.jsonl output
 * reads (outputs.ts): every top-level key is one.
 */
function keyedByUnit(fields: unknown): boolean {
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) return false;
  const keys = Object.keys(fields);
  return keys.length > 0 && keys.every((k) => /^[1-9]\d*$/.test(k) || /#\d+$/.test(k));
}

function tally(stats: Map<string, FieldStat>, field: string, correct: boolean): void {
  const stat = stats.get(field) ?? { fields: 0, correct: 0, accuracy: 0 };
  stat.fields++;
  if (correct) stat.correct++;
  stat.accuracy = round(stat.correct / stat.fields)!;
  stats.set(field, stat);
}

/** Scores one truth file; adds its fields to the model's per-field tallies `stats` and `across` (units left out). */
function scoreOne(t: Truth, truthDir: string, loaded: Loaded, options: EvalOptions, stats: Map<string, FieldStat>, across: Map<string, FieldStat>): DocumentResult {
  const base: DocumentResult = {
    document: t.key,
    truth: relative(truthDir, t.path),
    output: loaded.file,
    status: loaded.content ? 'scored' : 'missing',
  };
  if (!loaded.content) base.reason = loaded.reason;
  if (t.fields) {
    const value = loaded.content?.kind === 'fields' ? loaded.content.value : undefined;
    const results = scoreFields(t.fields, value, options);
    const perUnit = keyedByUnit(t.fields);
    for (const r of results) {
      tally(stats, r.field, r.correct);
      tally(across, perUnit ? formatPath(r.segments.slice(1), true) || '(the whole unit)' : r.field, r.correct);
    }
    const correct = results.filter((r) => r.correct).length;
    return {
      ...base,
      fields: results.length,
      correct_fields: correct,
      field_accuracy: round(ratio(correct, results.length)),
      ...(loaded.content ? { wrong: results.filter((r) => !r.correct).map((r) => ({ path: r.path, expected: r.expected, got: r.got ?? null, reason: r.reason! })) } : {}),
    };
  }
  const output = loaded.content?.kind === 'text' ? loaded.content.text : null;
  const s = scoreText(t.text!, output, options.caseSensitive, options.budget ?? EXACT_BUDGET);
  return {
    ...base,
    chars: s.chars,
    char_edits: s.char_edits,
    cer: round(s.cer),
    words: s.words,
    word_edits: s.word_edits,
    wer: round(s.wer),
    exact: s.exact,
    pages: s.pages?.map((p) => ({ ...p, cer: round(p.cer), wer: round(p.wer) })) ?? null,
    unscored_pages: s.unscored_pages,
  };
}

/**
 * The outputs by the truth names they answer to. Exactly first: outputs named X, and X-<8 hex> of
 * the same source (another run of the file under another task), the one named X first. When none
 * is, the names as the writer tells them apart (NFC, case folded: one name on a filesystem that
 * ignores case; a truth file named on macOS is NFD), and then the input's file name
 * (`scan.pdf.json`). Indexed once: a truth folder of thousands matches in linear time.
 */
class OutputNames {
  private readonly exact = new Map<string, FoundOutput[]>();
  private readonly folded = new Map<string, FoundOutput[]>();
  private readonly sources = new Map<string, FoundOutput[]>();

  constructor(outputs: FoundOutput[]) {
    for (const o of outputs) {
      add(this.exact, [o.name, o.key], o);
      add(this.folded, [fold(o.name), fold(o.key)], o);
      if (o.report.source !== null) add(this.sources, [fold(basename(o.report.source))], o);
    }
  }

  /** Every output answering to truth `key`, the best first. */
  answering(key: string): FoundOutput[] {
    const exact = this.exact.get(key);
    if (exact) return [...exact].sort((a, b) => Number(b.name === key) - Number(a.name === key));
    const folded = fold(key);
    const alike = this.folded.get(folded);
    if (alike) return [...alike].sort((a, b) => Number(fold(b.name) === folded) - Number(fold(a.name) === folded));
    return [...(this.sources.get(folded) ?? [])];
  }
}

function add(index: Map<string, FoundOutput[]>, names: string[], o: FoundOutput): void {
  for (const name of new Set(names)) {
    const list = index.get(name);
    if (list) list.push(o);
    else index.set(name, [o]);
  }
}

function fold(name: string): string {
  return name.normalize('NFC').toLowerCase();
}

/** The first of the outputs answering to truth `key`; several are said, not skipped. */
function pick(key: string, candidates: FoundOutput[], problems: DocbatchError[]): FoundOutput | undefined {
  if (candidates.length > 1) {
    problems.push(
      new DocbatchError('EVAL_BAD_OUTPUT', `${candidates.length} outputs answer to truth "${key}" (${candidates.map((c) => c.reportPath).join(', ')}); scoring the first`, {
        place: { file: candidates[0]!.reportPath },
      }),
    );
  }
  return candidates[0];
}

type Loaded = { content: ReturnType<typeof parseOutput> | null; reason: string; file: string | null };

function load(match: FoundOutput, want: ContentKind, outDir: string, problems: DocbatchError[]): Loaded {
  const order: Array<keyof FoundOutput['files']> = want === 'fields' ? ['json', 'jsonl'] : ['md', 'jsonl'];
  const path = order.map((ext) => match.files[ext]).find((p) => p !== undefined);
  if (path === undefined) {
    const failure = match.report.failed[0];
    const why = failure ? `; the report lists ${match.report.failed.length} failed unit(s), first ${failure.code ?? '?'}: ${failure.message ?? ''}` : '';
    const have = Object.keys(match.files);
    return { content: null, file: null, reason: `no ${want === 'fields' ? `${match.name}.json or .jsonl` : `${match.name}.md or .jsonl`} output${have.length ? ` (only .${have.join(', .')})` : ''}${why}` };
  }
  const file = relative(outDir, path);
  try {
    const content = parseOutput(path, readFileSync(path, 'utf8'), want);
    if (content.kind === 'text' && content.text.failed) {
      const { code, message } = content.text.failed;
      return { content: null, file, reason: `the output says the document failed: ${code}: ${message}` };
    }
    return { content, file, reason: '' };
  } catch (err) {
    const problem = err instanceof DocbatchError ? err : new DocbatchError('EVAL_BAD_OUTPUT', (err as Error).message, { cause: err, place: { file: path } });
    problems.push(problem);
    return { content: null, file, reason: `unreadable output: ${problem.message}` };
  }
}

/** Rates to six decimals (no floating-point tails in the JSON). */
export function round(x: number | null): number | null {
  return x === null ? null : Math.round(x * 1e6) / 1e6;
}
