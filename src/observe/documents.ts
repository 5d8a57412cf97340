/**
 * The dashboard's documents: what `/documents` and `/api/documents` show, read from the document
 * index (`{p}:docs`, newest first) and the records, never from BullMQ's jobs. One run (an input
 * under a task and a model) is one document.
 *
 * - `listDocuments`: a page of documents with their progress, searched by file name, path or id
 *   (`q`, case-insensitive) and filtered by state (queued, running, written, failed). Without a
 *   search or filter it reads only the page; with one it reads the newest MAX_SCAN records in
 *   batches and says when it stopped there (`truncated`).
 * - `documentFailures`: a document's failed units with their codes and messages: from its
 *   results in Redis while it runs, from its report (X.report.json, when this process can read
 *   it inside OUT_DIR) or its results archive in the blob store once written.
 *
 * The JSON field names are the API's contract (docs/operations.md, "The dashboard").
 */
import { readFile, realpath } from 'node:fs/promises';
import { basename, relative, isAbsolute } from 'node:path';
import { readArchive } from '../store/archive.ts';
import { costUsd } from './cost.ts';
import { totalJson } from '../usage.ts';
import type { BlobStore } from '../store/blobs.ts';
import type { DocStore } from '../store/docs.ts';
import type { DocRecord, DocState, UnitResult } from '../store/types.ts';
import { progressOf, viewState, VIEW_STATES, type StateFields, type ViewState } from './progress.ts';

/** Records read at most for one search or filter (newest first). */
export const MAX_SCAN = 50_000;
/** Records read at most to count documents per state when listing without a search. */
export const COUNT_SCAN = 5000;
/** Failures listed at most for one document. */
export const MAX_FAILURES = 1000;

/** One document as `/api/documents` gives it. */
export interface DocumentJson {
  id: string;
  name: string;
  source: string;
  kind: string;
  task: string;
  unit: string;
  model: string | null;
  /** queued, running, written, failed (see progress.ts viewState). */
  state: ViewState;
  /** The record's own state: enqueuing, running, complete (being written), written, failed. */
  phase: string;
  units: number;
  done: number;
  failed: number;
  /** Units per second since its first unit started. */
  rate: number | null;
  eta_seconds: number | null;
  /** Tokens the engine reported: a lower bound when units_without_usage > 0; null when none was (src/usage.ts). */
  prompt_tokens: number | null;
  completion_tokens: number | null;
  /** Units settled whose tokens the engine did not report. */
  units_without_usage: number;
  engine_seconds: number;
  /** At GPU_HOURLY_USD, when the dashboard has it. */
  cost_usd: number | null;
  enqueued_at: string;
  started_at: string | null;
  finished_at: string | null;
  written_at: string | null;
  /** The output files, with the dashboard's link to each. */
  outputs: Array<{ name: string; path: string; url: string }>;
  /** Set when its outputs could not be written. */
  write_error: { code: string; message: string } | null;
}

export function documentJson(record: DocRecord, options: { gpuHourlyUsd?: number | undefined; now?: number } = {}): DocumentJson {
  const p = progressOf(record, options.now);
  const price = options.gpuHourlyUsd;
  return {
    id: record.docId,
    name: record.meta.name,
    source: record.meta.source,
    kind: record.meta.kind,
    task: record.meta.task?.name ?? '',
    unit: record.meta.task?.unit ?? '',
    model: record.meta.model ?? null,
    state: p.state,
    phase: record.state,
    units: record.units,
    done: record.done,
    failed: record.failed,
    rate: p.rate,
    eta_seconds: p.etaSeconds,
    prompt_tokens: totalJson(record.promptTokens, record.unitsWithoutUsage),
    completion_tokens: totalJson(record.completionTokens, record.unitsWithoutUsage),
    units_without_usage: record.unitsWithoutUsage,
    engine_seconds: record.engineMs / 1000,
    cost_usd: costUsd(record.engineMs, price),
    enqueued_at: record.meta.enqueuedAt ?? record.createdAt,
    started_at: record.startedAt,
    finished_at: record.finishedAt,
    written_at: record.writtenAt,
    outputs: record.files.map((path, i) => ({ name: basename(path), path, url: `/documents/${record.docId}/outputs/${i}` })),
    write_error: record.writeError,
  };
}

export interface ListQuery {
  /** Part of the file name, input path or output name, or the start of an id (case-insensitive). */
  q?: string | undefined;
  state?: ViewState | undefined;
  /** 1-based. @defaultValue 1 */
  page?: number;
  /** @defaultValue 50 */
  perPage?: number;
  gpuHourlyUsd?: number | undefined;
}

export interface ListResult {
  documents: DocumentJson[];
  /** Documents matching (within the records read). */
  total: number;
  page: number;
  per_page: number;
  pages: number;
  /** Matching documents per state, whatever `state` is (within the records read). */
  states: Record<ViewState, number>;
  /** Records read for the search or the counts (newest first). */
  scanned: number;
  /** True when older documents were not read: a search stops after MAX_SCAN, counts after COUNT_SCAN. */
  truncated: boolean;
}

/** `?state=` as given: one of VIEW_STATES, or undefined (anything else is an error for the caller). */
export function parseState(value: string | undefined): ViewState | undefined | null {
  if (value === undefined || value === '' || value === 'all') return undefined;
  return (VIEW_STATES as readonly string[]).includes(value) ? (value as ViewState) : null;
}

function matches(record: DocRecord, q: string): boolean {
  const needle = q.toLowerCase();
  return record.docId.startsWith(needle) || record.meta.source.toLowerCase().includes(needle) || record.meta.name.toLowerCase().includes(needle);
}

const STATE_FIELDS = ['state', 'units', 'done', 'failed', 'started_at'] as const;

/**
 * The view states of `ids` (missing records left out), reading only the fields viewState needs
 * in one round trip: counting and filtering thousands of records per request (the page refreshes
 * every 5 s) then moves a few bytes a record, not whole records with their settings.
 */
async function statesOf(store: DocStore, ids: string[]): Promise<Array<{ id: string; state: ViewState }>> {
  if (ids.length === 0) return [];
  const pipeline = store.redis.pipeline();
  // `meta` only to tell a record from a missing one: HSTRLEN, not the value.
  for (const id of ids) pipeline.hmget(store.docKey(id), ...STATE_FIELDS).hstrlen(store.docKey(id), 'meta');
  const replies = (await pipeline.exec()) ?? [];
  const out: Array<{ id: string; state: ViewState }> = [];
  ids.forEach((id, i) => {
    const [err, values] = replies[2 * i]!;
    const [, metaLength] = replies[2 * i + 1]!;
    if (err || !metaLength) return;
    const [state, units, done, failed, startedAt] = values as Array<string | null>;
    const fields: StateFields = { state: (state ?? 'enqueuing') as DocState, units: Number(units ?? 0), done: Number(done ?? 0), failed: Number(failed ?? 0), startedAt: startedAt || null };
    out.push({ id, state: viewState(fields) });
  });
  return out;
}

export async function listDocuments(store: DocStore, query: ListQuery = {}): Promise<ListResult> {
  const perPage = Math.max(1, Math.min(500, query.perPage ?? 50));
  const page = Math.max(1, query.page ?? 1);
  const q = query.q?.trim() ?? '';
  const now = Date.now();
  const json = (r: DocRecord) => documentJson(r, { gpuHourlyUsd: query.gpuHourlyUsd, now });
  const states: Record<ViewState, number> = { queued: 0, running: 0, written: 0, failed: 0 };
  if (q === '' && query.state === undefined) {
    // No search: read the page only; counts per state come from the same bounded scan as a search.
    const total = await store.redis.zcard(store.docsKey);
    const ids = await store.redis.zrevrange(store.docsKey, (page - 1) * perPage, page * perPage - 1);
    const records = await store.getMany(ids);
    const counted = await countStates(store, Math.min(total, COUNT_SCAN), states);
    return { documents: records.map(json), total, page, per_page: perPage, pages: Math.max(1, Math.ceil(total / perPage)), states, scanned: counted, truncated: counted < total };
  }
  const indexed = await store.redis.zcard(store.docsKey);
  const scanned = Math.min(indexed, MAX_SCAN);
  const matching: string[] = [];
  for (let start = 0; start < scanned; start += 500) {
    const ids = await store.redis.zrevrange(store.docsKey, start, Math.min(scanned, start + 500) - 1);
    // A search reads names and paths (whole records); a filter by state alone, the state fields.
    const found = q !== '' ? (await store.getMany(ids)).filter((r) => matches(r, q)).map((r) => ({ id: r.docId, state: viewState(r) })) : await statesOf(store, ids);
    for (const { id, state } of found) {
      states[state]++;
      if (query.state === undefined || state === query.state) matching.push(id);
    }
  }
  const total = matching.length;
  const documents = (await store.getMany(matching.slice((page - 1) * perPage, page * perPage))).map(json);
  return { documents, total, page, per_page: perPage, pages: Math.max(1, Math.ceil(total / perPage)), states, scanned, truncated: scanned < indexed };
}

/** Counts the newest `limit` documents per state into `states`; returns how many were read. */
async function countStates(store: DocStore, limit: number, states: Record<ViewState, number>): Promise<number> {
  let read = 0;
  for (let start = 0; start < limit; start += 500) {
    const ids = await store.redis.zrevrange(store.docsKey, start, Math.min(limit, start + 500) - 1);
    for (const { state } of await statesOf(store, ids)) states[state]++;
    read += ids.length;
  }
  return read;
}

export interface UnitFailureJson {
  unit: number;
  /** 1-based page, for a page unit. */
  page?: number;
  conversation_id?: string;
  chunk?: number;
  code: string;
  message: string;
}

export interface FailuresResult {
  /** Where they were read: the results in Redis, the report file, the results archive, or nowhere. */
  from: 'results' | 'report' | 'archive' | 'none';
  failures: UnitFailureJson[];
  /** Failures beyond MAX_FAILURES, not listed. */
  more: number;
  /** Why none could be read, when `from` is `none` and the document has failures. */
  note?: string;
}

function failureOf(record: DocRecord, unit: number, r: UnitResult): UnitFailureJson | null {
  if (r.ok) return null;
  const isPage = record.meta.kind !== 'chat' && record.meta.task?.unit !== 'document';
  return { unit, ...(isPage ? { page: unit + 1 } : {}), code: r.code, message: r.message };
}

/** True when `path` resolves (symbolic links followed) inside `dir`. */
export async function insideDir(path: string, dir: string): Promise<boolean> {
  try {
    const [p, d] = await Promise.all([realpath(path), realpath(dir)]);
    const rel = relative(d, p);
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
  } catch {
    return false;
  }
}

export async function documentFailures(store: DocStore, blobs: BlobStore | null, record: DocRecord, outDir: string | null): Promise<FailuresResult> {
  const failures: UnitFailureJson[] = [];
  let more = 0;
  const add = (f: UnitFailureJson | null) => {
    if (!f) return;
    if (failures.length < MAX_FAILURES) failures.push(f);
    else more++;
  };
  const sorted = (from: FailuresResult['from']): FailuresResult => ({ from, failures: failures.sort((a, b) => a.unit - b.unit), more });
  if (record.state !== 'written' && (await store.hasResults(record.docId, record.gen))) {
    let cursor = '0';
    do {
      const [next, flat] = await store.redis.hscan(store.unitsKey(record.docId, record.gen), cursor, 'COUNT', 1000);
      cursor = next;
      for (let i = 0; i + 1 < flat.length; i += 2) {
        if (!flat[i + 1]!.includes('"ok":false')) continue;
        add(failureOf(record, Number(flat[i]), JSON.parse(flat[i + 1]!) as UnitResult));
      }
    } while (cursor !== '0');
    return sorted('results');
  }
  if (record.failed === 0) return sorted('none');
  const report = record.files.find((f) => f.endsWith('.report.json'));
  if (report && outDir && (await insideDir(report, outDir))) {
    try {
      const parsed = JSON.parse(await readFile(report, 'utf8')) as { failed?: UnitFailureJson[] };
      for (const f of parsed.failed ?? []) add({ unit: f.unit, ...(f.page !== undefined ? { page: f.page } : {}), ...(f.conversation_id !== undefined ? { conversation_id: f.conversation_id, chunk: f.chunk! } : {}), code: f.code, message: f.message });
      return sorted('report');
    } catch {
      // Unreadable or changed since: try the archive.
    }
  }
  // Read line by line: an archive may be larger than one string can be.
  const archived = blobs
    ? await readArchive(blobs, record.docId, record.gen, async (lines) => {
        const found: UnitFailureJson[] = [];
        let beyond = 0;
        for await (const line of lines) {
          if (!line.includes('"ok":false')) continue;
          const [unit, result] = JSON.parse(line) as [number, UnitResult];
          const failure = failureOf(record, unit, result);
          if (!failure) continue;
          if (found.length < MAX_FAILURES) found.push(failure);
          else beyond++;
        }
        return { found, beyond };
      }).catch(() => null)
    : null;
  if (archived) {
    for (const f of archived.found) add(f);
    more += archived.beyond;
    return sorted('archive');
  }
  return {
    from: 'none',
    failures: [],
    more: 0,
    note: `its report ${report ?? '(none)'} is not readable inside this dashboard's OUT_DIR, and its results archive is not in this dashboard's BLOB_DIR: run the dashboard where OUT_DIR or BLOB_DIR are mounted, or read the report on the writer's machine`,
  };
}
