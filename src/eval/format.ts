/**
 * The human-readable forms of `docbatch eval` and `docbatch compare`: aligned tables and short
 * lists, for a terminal. Pure: report objects in, text out. `--json` prints the objects instead.
 */
import type { RunComparison } from './compare-run.ts';
import type { EvalReport, ModelResult } from './score.ts';

/** How many wrong fields, missing documents or disagreements a list shows before "... and N more". */
const LIST_LIMIT = 10;

export function formatEval(report: EvalReport): string {
  const out: string[] = [];
  const names = Object.keys(report.models);
  out.push(
    table(
      ['model', 'documents', 'missing', 'fields', 'field accuracy', 'CER', 'WER', 'pages'],
      names.map((name) => {
        const m = report.models[name]!;
        return [name, String(m.documents), String(m.missing_outputs), String(m.fields), pct(m.field_accuracy), pct(m.cer), pct(m.wer), String(m.pages)];
      }),
      [false, true, true, true, true, true, true, true],
    ),
  );
  for (const name of names) out.push('', ...formatModel(name, report.models[name]!));
  return `${out.join('\n')}\n`;
}

function formatModel(name: string, m: ModelResult): string[] {
  const out = [`${name}  (in ${m.folders.join(', ') || '?'})`];
  // Truth keyed by page or chunk: one row per field over every page, not one per page and field.
  const perUnit = Object.keys(m.per_field).some((field) => !(field in m.per_field_across_units));
  const fields = Object.entries(perUnit ? m.per_field_across_units : m.per_field);
  if (fields.length > 0) {
    const rows = fields.map(([field, s]) => [field, String(s.fields), String(s.correct), pct(s.accuracy)]);
    out.push(...indent(table([perUnit ? 'field (all pages and chunks)' : 'field', 'fields', 'correct', 'accuracy'], rows, [false, true, true, true])));
    if (perUnit) out.push('  (per page or chunk: per_field in --json)');
  }
  const text = m.per_document.filter((d) => d.chars !== undefined && d.status === 'scored');
  if (text.length > 0) {
    const rows = text.map((d) => [d.document, String(d.pages?.length ?? '-'), String(d.chars), pct(d.cer ?? null), pct(d.wer ?? null)]);
    out.push(...indent(table(['text document', 'pages', 'chars', 'CER', 'WER'], rows, [false, true, true, true, true])));
  }
  const wrong = m.per_document.flatMap((d) => (d.wrong ?? []).map((w) => `${d.document}: ${w.path}: expected ${show(w.expected)}, got ${show(w.got)}`));
  out.push(...indent(list('wrong', wrong).join('\n')));
  out.push(...indent(list('missing', m.missing.map((x) => `${x.document} (${x.reason})`)).join('\n')));
  const unscored = m.unscored_outputs.length;
  if (unscored > 0) out.push(`  not scored: ${unscored} output${unscored === 1 ? '' : 's'} without a truth file (--json lists ${unscored === 1 ? 'it' : 'them'})`);
  return out;
}

export function formatCompare(run: RunComparison): string {
  const out: string[] = [];
  out.push(`models: ${run.models.join(', ')}`);
  out.push(`documents compared: ${run.documents} (${run.agreeing_documents} agree on everything, ${run.disagreements.length} disagree)`);
  if (run.fields > 0) out.push(`fields: ${run.agreeing_fields} of ${run.fields} agree (${pct(run.field_agreement)})`);
  if (run.pages > 0) out.push(`pages: ${run.agreeing_pages} of ${run.pages} at similarity ≥ ${run.threshold} (mean similarity ${pct(run.mean_page_similarity)})`);
  const fields = Object.entries(run.per_field).sort(([, a], [, b]) => a.agreement - b.agreement);
  if (fields.length > 0) {
    out.push('', table(['field', 'compared', 'agree', 'agreement'], fields.map(([f, s]) => [f, String(s.compared), String(s.agreeing), pct(s.agreement)]), [false, true, true, true]));
  }
  const lines = run.disagreements.flatMap((d) => [
    ...d.fields.map((f) => `${d.document}: ${f.path}: ${Object.entries(f.values).map(([model, v]) => `${model}=${show(v)}`).join('  ')}`),
    ...d.pages.map((p) => `${d.document}: ${p.page === null ? 'text' : `page ${p.page}`}: similarity ${p.similarity.toFixed(3)}${p.failed.length ? ` (failed in ${p.failed.join(', ')})` : ''}`),
    ...(Object.keys(d.failed_units).length > 0 ? [`${d.document}: failed units: ${Object.entries(d.failed_units).map(([model, units]) => `${model}: ${shortList(units)}`).join('; ')}`] : []),
  ]);
  out.push(...spaced(list('disagree', lines)));
  out.push(...spaced(list('only in some models', run.only_in.map((o) => `${o.document}: in ${o.models.join(', ') || 'none'}; not in ${o.missing.join(', ')}`))));
  return `${out.join('\n')}\n`;
}

function list(title: string, items: string[]): string[] {
  if (items.length === 0) return [];
  const shown = items.slice(0, LIST_LIMIT).map((i) => `  ${i}`);
  const more = items.length > LIST_LIMIT ? [`  ... and ${items.length - LIST_LIMIT} more (--json lists all)`] : [];
  return [`${title}:`, ...shown, ...more];
}

function shortList(items: string[]): string {
  return items.length > 5 ? `${items.slice(0, 5).join(', ')} and ${items.length - 5} more` : items.join(', ');
}

function spaced(lines: string[]): string[] {
  return lines.length > 0 ? ['', ...lines] : [];
}

function indent(text: string): string[] {
  return text === '' ? [] : text.split('\n').map((l) => `  ${l}`);
}

export function pct(x: number | null): string {
  return x === null ? '-' : `${(x * 100).toFixed(2)}%`;
}

function show(v: unknown): string {
  const s = v === undefined ? 'null' : JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Columns padded to their widest cell; `right[i]` right-aligns column i. */
export function table(head: string[], rows: string[][], right: boolean[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}
