/**
 * `X.compare.json`: how the models of one input agree. Runs of one input and task on several
 * models enqueued together know each other (`meta.siblings`); when the last of them is written,
 * the writer that wrote it compares their outputs (src/eval/compare.ts: fields for JSON outputs,
 * page similarity for text) and writes the comparison whole, once, into the runs' common folder
 * (the `--out` folder, or OUT_DIR itself) beside the model folders:
 *
 *   out/model-a/X.json   out/model-b/X.json   out/X.compare.json
 *
 * "Last" is decided after this run is marked written: each writer marks its run, then reads its
 * siblings' states, so of two runs written at the same moment at least one sees both written
 * (both may: the file is then written twice with the same bytes, since it comes only from the
 * output files and the records). X is the name of the first run's outputs; the name is claimed
 * in the names hash (`{folder}/X.compare`), so two inputs that share a name never share a file.
 *
 * A writer that dies between marking the last run written and writing the comparison would
 * leave it unwritten for ever (the job taken over finds the run written; a written record keeps
 * no siblings): before the mark the record gets `compare_due` (the siblings' ids), which the
 * comparison step removes once it ran, and a write job that finds its run written runs the step
 * again while that field is there (`dueComparison`).
 *
 * A comparison that cannot be written (the outputs unreadable, the disk full) is logged with
 * COMPARE_FAILED and does not fail the run: its outputs are written, and `docbatch compare` gives
 * the same figures. The outputs are read from the local OUT_DIR (a sink elsewhere: skipped).
 */
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { toDocbatchError } from '../errors.ts';
import { DEFAULT_COMPARE, type DocumentComparison } from '../eval/compare.ts';
import { compareDocumentFiles } from '../eval/compare-run.ts';
import type { Logger } from '../observe/log.ts';
import type { DocStore } from '../store/docs.ts';
import type { DocRecord } from '../store/types.ts';
import { LocalSink, type OutputSink } from './atomic.ts';

/** The file's content: the comparison, and which runs and files it compared. */
export interface ComparisonFile extends DocumentComparison {
  source: string;
  /** Model → its output relative to the comparison's folder (null: the run wrote none). */
  outputs: Record<string, string | null>;
  /** Model → the run (doc id) and its generation. */
  runs: Record<string, { document: string; generation: number }>;
}

export interface CompareParts {
  store: DocStore;
  sink: OutputSink;
  log: Logger;
}

/** The record field that says the comparison step of a run being written has not run yet (its siblings' ids, JSON). */
const COMPARE_DUE = 'compare_due';

/** Before `record` is marked written: its comparison step is due until writeComparison ran. */
export async function markComparisonDue(record: DocRecord, store: DocStore): Promise<void> {
  const siblings = record.meta.siblings ?? [];
  if (siblings.length >= 2) await store.redis.hset(store.docKey(record.docId), COMPARE_DUE, JSON.stringify(siblings));
}

/**
 * A written run whose comparison step never ran (its writer died after the mark): the record
 * with its siblings back in its meta, for writeComparison; null when none is due.
 */
export async function dueComparison(record: DocRecord, store: DocStore): Promise<DocRecord | null> {
  const due = await store.redis.hget(store.docKey(record.docId), COMPARE_DUE);
  if (due === null) return null;
  return { ...record, meta: { ...record.meta, siblings: JSON.parse(due) as string[] } };
}

/**
 * Writes `X.compare.json` when `record` (just marked written) is the last of its siblings to be
 * written. Returns the file written, or null (no siblings, some not written yet, or it failed).
 */
export async function writeComparison(record: DocRecord, parts: CompareParts): Promise<string | null> {
  const siblings = record.meta.siblings ?? [];
  if (siblings.length < 2) return null;
  const written = await compareSiblings(record, siblings, parts);
  // The step ran (written, not the last run, or failed and logged): no longer due.
  await parts.store.redis.hdel(parts.store.docKey(record.docId), COMPARE_DUE);
  return written;
}

async function compareSiblings(record: DocRecord, siblings: string[], parts: CompareParts): Promise<string | null> {
  const { store, sink, log } = parts;
  if (!(sink instanceof LocalSink)) {
    log.debug({ docId: record.docId }, 'outputs are not in a local folder; X.compare.json skipped (docbatch compare reads a copy)');
    return null;
  }
  try {
    const runs: DocRecord[] = [];
    for (const id of siblings) {
      const run = await store.get(id);
      if (!run || run.state !== 'written') return null; // that run's writer compares, once it is written
      runs.push(run);
    }
    const folder = commonFolder(runs.map((r) => r.meta.outSub));
    const first = runs[0]!;
    const name = await store.claimName(folder, first.meta.name, first.docId, first.meta.sha256, '.compare');
    const at = resolve(sink.root, folder);
    const files = runs.map((r) => ({ model: modelOf(r), path: mainOutput(r) }));
    const { document, ...comparison } = compareDocumentFiles(name, files, DEFAULT_COMPARE);
    const content: ComparisonFile = {
      document,
      source: first.meta.source,
      outputs: Object.fromEntries(files.map((f) => [f.model, f.path === null ? null : relative(at, f.path)])),
      runs: Object.fromEntries(runs.map((r) => [modelOf(r), { document: r.docId, generation: r.gen }])),
      ...comparison,
    };
    const path = await sink.writeWhole(join(folder, `${name}.compare.json`), `${JSON.stringify(content, null, 2)}\n`);
    log.info({ docId: record.docId, file: path, agree: comparison.agree, disagreements: comparison.disagreements.length }, 'models compared');
    return path;
  } catch (caught) {
    const err = toDocbatchError(caught, 'COMPARE_FAILED');
    log.warn({ docId: record.docId, code: 'COMPARE_FAILED', cause: err.code, err: err.message }, 'X.compare.json could not be written; the runs are written (docbatch compare gives the same)');
    return null;
  }
}

function modelOf(run: DocRecord): string {
  return run.meta.model ?? run.docId;
}

/** The run's main output (X.md, X.json, X.jsonl) as written, or null when it wrote none. */
function mainOutput(run: DocRecord): string | null {
  const file = run.files.find((f) => !f.endsWith('.report.json'));
  return file !== undefined && isAbsolute(file) ? file : null;
}

/** The deepest folder holding every one of `folders` (relative to OUT_DIR; '' is OUT_DIR). */
export function commonFolder(folders: string[]): string {
  const split = folders.map((f) => f.split(/[\\/]+/).filter((s) => s !== '' && s !== '.'));
  const common: string[] = [];
  for (let i = 0; split.every((s) => i < s.length && s[i] === split[0]![i]); i++) common.push(split[0]![i]!);
  return common.join(sep);
}
