/**
 * Finds a run's outputs under OUT_DIR and says which served model made each. Reads files only.
 *
 * Every `X.report.json` under OUT_DIR (any depth, through symbolic links, each folder once;
 * hidden folders skipped) is one document. Its model is the served name in the report's `models` (never the folder's name:
 * folders are named from models with unsafe characters replaced). A report whose `models` is
 * empty (every unit failed) takes the model its run named (`model`), else the one model of the
 * other reports in its folder, else `(unknown)`; a report naming several models (a run that named none, served by workers with
 * different models) is grouped under the names joined with ` + `.
 *
 * Its outputs are the `.md`, `.json` and `.jsonl` files the report lists in `outputs`, looked up
 * by file name beside the report (so a copied or moved OUT_DIR still works), else `X.md`,
 * `X.json`, `X.jsonl` beside it. Its key, the truth name it answers to, is X, or for a
 * de-duplicated name `X-<8 hex>` the base name of the report's `source`.
 */
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, extname, join, relative } from 'node:path';
import { DocbatchError } from '../errors.ts';

/** The fields of `X.report.json` that evaluation reads. */
export interface ReportInfo {
  document: string | null;
  source: string | null;
  kind: string | null;
  /** The model the run named (null: the engine's own). */
  model: string | null;
  models: string[];
  task: { name?: string; unit?: string; output?: string; hash?: string } | null;
  units: number | null;
  completed: number | null;
  failed: Array<{ unit?: number | string; code?: string; message?: string; page?: number }>;
  outputs: string[];
}

export interface FoundOutput {
  /** The truth name this document answers to. */
  key: string;
  /** X as on disk (`X.report.json`). */
  name: string;
  dir: string;
  reportPath: string;
  model: string;
  report: ReportInfo;
  /** Absolute paths of the outputs that exist, by extension. */
  files: { md?: string; json?: string; jsonl?: string };
}

export interface Discovery {
  outDir: string;
  outputs: FoundOutput[];
  /** Served model names, sorted. */
  models: string[];
  /** Model → the folders (relative to OUT_DIR, `.` for OUT_DIR itself) its outputs are in. */
  folders: Record<string, string[]>;
  /** Reports that could not be read (EVAL_BAD_OUTPUT). */
  problems: DocbatchError[];
}

export const UNKNOWN_MODEL = '(unknown)';
const REPORT = '.report.json';

export function discoverOutputs(outDir: string): Discovery {
  const found: Array<Omit<FoundOutput, 'model'>> = [];
  const problems: DocbatchError[] = [];
  for (const reportPath of reportFiles(outDir)) {
    let report: ReportInfo;
    try {
      report = readReport(reportPath);
    } catch (err) {
      problems.push(err as DocbatchError);
      continue;
    }
    const dir = join(reportPath, '..');
    const name = basename(reportPath).slice(0, -REPORT.length);
    found.push({ key: keyOf(name, report.source), name, dir, reportPath, report, files: outputFiles(dir, name, report.outputs) });
  }
  // A folder's model, for its reports that name none.
  const byFolder = new Map<string, Set<string>>();
  for (const f of found) {
    if (f.report.models.length !== 1) continue;
    const set = byFolder.get(f.dir) ?? new Set<string>();
    set.add(f.report.models[0]!);
    byFolder.set(f.dir, set);
  }
  const outputs = found.map((f): FoundOutput => {
    const models = f.report.models;
    let model: string;
    if (models.length === 1) model = models[0]!;
    else if (models.length > 1) model = [...models].sort().join(' + ');
    else if (f.report.model) model = f.report.model;
    else {
      const folder = byFolder.get(f.dir);
      model = folder?.size === 1 ? [...folder][0]! : UNKNOWN_MODEL;
    }
    return { ...f, model };
  });
  const folders: Record<string, string[]> = {};
  for (const o of outputs) {
    const rel = relative(outDir, o.dir) || '.';
    const list = (folders[o.model] ??= []);
    if (!list.includes(rel)) list.push(rel);
  }
  for (const list of Object.values(folders)) list.sort();
  return { outDir, outputs, models: Object.keys(folders).sort(), folders, problems };
}

/** The base name of a file name or path without its extension, as the producer names outputs. */
export function stemOf(path: string): string {
  const name = basename(path);
  const ext = extname(name);
  return ext ? name.slice(0, -ext.length) : name;
}

function keyOf(name: string, source: string | null): string {
  if (source === null) return name;
  const stem = stemOf(source);
  return name.startsWith(`${stem}-`) && /^-[0-9a-f]{8}$/.test(name.slice(stem.length)) ? stem : name;
}

/**
 * Every report under `dir`, in name order. Symbolic links are followed (an OUT_DIR put together
 * from several runs' model folders), each folder read once by its real path, so a link back up
 * neither loops nor counts a document twice; a link that leads nowhere is passed over.
 */
function* reportFiles(dir: string, depth = 0, seen = new Set<string>()): Generator<string> {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return;
  }
  if (seen.has(real)) return;
  seen.add(real);
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const path = join(dir, e.name);
    let isFile = e.isFile();
    let isDir = e.isDirectory();
    if (e.isSymbolicLink()) {
      // A link that leads nowhere: missing (ENOENT), a ring of links (ELOOP), a target not ours to see.
      let target;
      try {
        target = statSync(path, { throwIfNoEntry: false });
      } catch {
        target = undefined;
      }
      isFile = target?.isFile() ?? false;
      isDir = target?.isDirectory() ?? false;
    }
    if (isFile && e.name.endsWith(REPORT)) yield path;
    else if (isDir && !e.name.startsWith('.') && depth < 8) yield* reportFiles(path, depth + 1, seen);
  }
}

function readReport(path: string): ReportInfo {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new DocbatchError('EVAL_BAD_OUTPUT', `report is not readable JSON: ${(err as Error).message}`, { cause: err, place: { file: path } });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new DocbatchError('EVAL_BAD_OUTPUT', 'report is not a JSON object', { place: { file: path } });
  }
  const r = raw as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  const num = (v: unknown) => (typeof v === 'number' ? v : null);
  return {
    document: str(r.document),
    source: str(r.source),
    kind: str(r.kind),
    model: str(r.model),
    models: Array.isArray(r.models) ? r.models.filter((m): m is string => typeof m === 'string' && m !== '') : [],
    task: typeof r.task === 'object' && r.task !== null ? (r.task as ReportInfo['task']) : null,
    units: num(r.units),
    completed: num(r.completed),
    failed: Array.isArray(r.failed) ? (r.failed as ReportInfo['failed']) : [],
    outputs: Array.isArray(r.outputs) ? r.outputs.filter((o): o is string => typeof o === 'string') : [],
  };
}

function outputFiles(dir: string, name: string, listed: string[]): FoundOutput['files'] {
  const files: FoundOutput['files'] = {};
  const candidates = [...listed.map((p) => basename(p)), `${name}.json`, `${name}.jsonl`, `${name}.md`];
  for (const file of candidates) {
    if (file.endsWith(REPORT) || file.endsWith('.compare.json')) continue;
    const ext = file.endsWith('.jsonl') ? 'jsonl' : file.endsWith('.json') ? 'json' : file.endsWith('.md') ? 'md' : null;
    if (ext === null || files[ext] !== undefined) continue;
    const path = join(dir, file);
    if (existsSync(path)) files[ext] = path;
  }
  return files;
}
