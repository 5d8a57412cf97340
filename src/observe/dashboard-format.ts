/**
 * How docbatch jobs look on the dashboard: a name that says which unit of which document it is
 * (and, once failed, its error code), and data and return values with long fields cut short so
 * a job card never carries a wall of text. Pure functions of the job's JSON; Bull Board calls
 * them through its adapter formatters (`setFormatter('name' | 'data' | 'returnValue', ...)`).
 *
 * Nothing here escapes HTML: Bull Board renders through React, which escapes text (the browser
 * test in test/ui checks markup in job data and failure reasons stays text).
 */

export interface CutOptions {
  /** Strings longer than this are cut, with how much was left out. @defaultValue 160 */
  maxString?: number;
  /** Arrays longer than this keep their first items and a count of the rest. @defaultValue 20 */
  maxItems?: number;
  /** Deeper objects are replaced by a summary. @defaultValue 4 */
  maxDepth?: number;
}

/** A copy of `value` with long strings, long arrays and deep nesting cut short. */
export function cutShort(value: unknown, options: CutOptions = {}, depth = 0): unknown {
  const maxString = options.maxString ?? 160;
  const maxItems = options.maxItems ?? 20;
  const maxDepth = options.maxDepth ?? 4;
  if (typeof value === 'string') {
    return value.length > maxString ? `${value.slice(0, maxString)}… (${value.length - maxString} more characters)` : value;
  }
  if (value === null || typeof value !== 'object') return value;
  if (depth >= maxDepth) return Array.isArray(value) ? `[${value.length} items]` : `{${Object.keys(value).length} fields}`;
  if (Array.isArray(value)) {
    const kept = value.slice(0, maxItems).map((v) => cutShort(v, options, depth + 1));
    if (value.length > maxItems) kept.push(`… ${value.length - maxItems} more items`);
    return kept;
  }
  const out: Record<string, unknown> = {};
  const entries = Object.entries(value);
  for (const [k, v] of entries.slice(0, maxItems)) out[k] = cutShort(v, options, depth + 1);
  if (entries.length > maxItems) out['…'] = `${entries.length - maxItems} more fields`;
  return out;
}

/** `ENGINE_OOM` from a BullMQ failedReason `ENGINE_OOM: out of memory ...`; null if it has no code. */
export function errorCodeOf(failedReason: unknown): string | null {
  if (typeof failedReason !== 'string') return null;
  const m = /^([A-Z][A-Z0-9_]{2,}):/.exec(failedReason);
  return m ? m[1]! : null;
}

interface JobLike {
  name?: unknown;
  data?: unknown;
  failedReason?: unknown;
}

const MAX_NAME = 120;

function field(data: unknown, key: string): unknown {
  return data && typeof data === 'object' ? (data as Record<string, unknown>)[key] : undefined;
}

function shown(v: unknown): string {
  const s = typeof v === 'string' || typeof v === 'number' ? String(v) : '?';
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/**
 * `page 3 · d5f0c…` for a page (1-based), `chunk 4 · d5f0c…` for a chunk (unit index, as in the
 * job id), `document · d5f0c…` for a write job or a whole-document unit; ` · CONTEXT_TOO_LONG`
 * is added once the job failed. The job's name says what kind of unit it is.
 */
export function jobTitle(job: JobLike): string {
  const data = job.data;
  const kind = typeof job.name === 'string' ? job.name : field(data, 'kind');
  const docId = shown(field(data, 'docId'));
  const unit = field(data, 'unit');
  let title: string;
  if (kind === 'page' && typeof unit === 'number') title = `page ${unit + 1} · ${docId}`;
  else if ((kind === 'chunk' || kind === 'conversation' || kind === 'reduce') && unit !== undefined) title = `${kind} ${shown(unit)} · ${docId}`;
  else if (field(data, 'docId') !== undefined) title = `${typeof job.name === 'string' ? shown(job.name) : 'job'} · ${docId}`;
  else title = typeof job.name === 'string' ? job.name : 'job';
  const code = errorCodeOf(job.failedReason);
  if (code) title += ` · ${code}`;
  return title.length > MAX_NAME ? `${title.slice(0, MAX_NAME)}…` : title;
}

/** Infer job data with the fields people look for first. */
export function unitData(data: unknown): unknown {
  if (!data || typeof data !== 'object') return cutShort(data);
  const d = data as Record<string, unknown>;
  return cutShort({ docId: d.docId, unit: d.unit, gen: d.gen, ...rest(d, ['docId', 'unit', 'gen']) });
}

function rest(d: Record<string, unknown>, known: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(d).filter(([k]) => !known.includes(k)));
}
