/**
 * How far documents are: units settled of all, rate, time left, and the state a person cares
 * about (queued, running, written, failed). Read from the doc records, so any process
 * (enqueue --wait, status, the dashboard) sees the same numbers. Pure functions, plus reading
 * and polling records.
 */
import { DocbatchError } from '../errors.ts';
import type { DocStore } from '../store/docs.ts';
import { finishedWakeup } from './finished-wakeup.ts';
import type { DocRecord } from '../store/types.ts';

/**
 * What a document is, to a person: `queued` (no unit settled yet), `running` (units settling, or
 * all settled and being written), `written` (outputs on disk with at least one unit answered),
 * `failed` (its outputs could not be written, or every unit failed).
 */
export type ViewState = 'queued' | 'running' | 'written' | 'failed';
export const VIEW_STATES: readonly ViewState[] = ['queued', 'running', 'written', 'failed'];

/** What viewState reads of a record (the dashboard's counts read only these fields). */
export type StateFields = Pick<DocRecord, 'state' | 'units' | 'done' | 'failed' | 'startedAt'>;

export function viewState(record: StateFields): ViewState {
  switch (record.state) {
    case 'failed':
      return 'failed';
    case 'written':
      return record.units > 0 && record.done === 0 && record.failed > 0 ? 'failed' : 'written';
    case 'complete':
      return 'running';
    default:
      return record.startedAt === null && record.done + record.failed === 0 ? 'queued' : 'running';
  }
}

export interface DocProgress {
  record: DocRecord;
  settled: number;
  /**
   * Units per second of its current run: since its first unit settled, or since failed units
   * were reopened (retry: only the units settled since count). null before any settled.
   */
  rate: number | null;
  /** Seconds left at the current rate, null when unknown. */
  etaSeconds: number | null;
  finished: boolean;
  state: ViewState;
}

/**
 * The current run of a document: from its first unit taken by a worker (`started_at`; records
 * written before that was set there have their first unit settled), or from the last reopen of failed
 * units (retry), to its last unit settled (or now while it runs); `settled` counts the units
 * settled in it. null before it started.
 */
export interface RunSpan {
  start: number;
  end: number;
  settled: number;
}

export function runSpan(record: DocRecord, now = Date.now()): RunSpan | null {
  const finished = record.state === 'written' || record.state === 'failed';
  const resumed = record.resumedAt ? Date.parse(record.resumedAt) : null;
  const start = resumed ?? (record.startedAt ? Date.parse(record.startedAt) : null);
  if (start === null || Number.isNaN(start)) return null;
  const end = finished && record.finishedAt ? Date.parse(record.finishedAt) : now;
  const settled = record.done + record.failed - (resumed !== null ? record.resumedFrom : 0);
  return { start, end: Math.max(start, end), settled: Math.max(0, settled) };
}

export function progressOf(record: DocRecord, now = Date.now()): DocProgress {
  const settled = record.done + record.failed;
  const finished = record.state === 'written' || record.state === 'failed';
  const run = runSpan(record, now);
  const rate = run !== null && run.settled > 0 ? run.settled / Math.max(0.001, (run.end - run.start) / 1000) : null;
  const etaSeconds = finished ? 0 : rate ? (record.units - settled) / rate : null;
  return { record, settled, rate, etaSeconds, finished, state: viewState(record) };
}

/** The sum over several documents: counts, tokens, engine time, and the rate over their span. */
export interface Totals {
  documents: number;
  byState: Record<ViewState, number>;
  units: number;
  done: number;
  failed: number;
  /** Tokens the engine reported: a lower bound when unitsWithoutUsage > 0 (src/usage.ts). */
  promptTokens: number;
  completionTokens: number;
  /** Units settled whose tokens the engine did not report. */
  unitsWithoutUsage: number;
  engineMs: number;
  /**
   * Units settled per second while any of them ran: the units settled in their current runs
   * (runSpan) over the time covered by those runs. Yesterday's batch listed with today's, or a
   * document retried an hour after it was written, do not spread the rate over the hours between.
   */
  rate: number | null;
  /** From the first unit started to the last settled, or to now while any runs. */
  elapsedSeconds: number | null;
  /** Seconds left at `rate` (0 when all finished, null when unknown). */
  etaSeconds: number | null;
  finished: boolean;
}

export function totalsOf(progress: readonly DocProgress[], now = Date.now()): Totals {
  const byState: Record<ViewState, number> = { queued: 0, running: 0, written: 0, failed: 0 };
  let units = 0;
  let done = 0;
  let failed = 0;
  let promptTokens = 0;
  let completionTokens = 0;
  let unitsWithoutUsage = 0;
  let engineMs = 0;
  let first: number | null = null;
  let last: number | null = null;
  const runs: RunSpan[] = [];
  for (const p of progress) {
    const r = p.record;
    byState[p.state]++;
    units += r.units;
    done += r.done;
    failed += r.failed;
    promptTokens += r.promptTokens;
    completionTokens += r.completionTokens;
    unitsWithoutUsage += r.unitsWithoutUsage;
    engineMs += r.engineMs;
    if (r.startedAt) first = Math.min(first ?? Infinity, Date.parse(r.startedAt));
    const end = p.finished && r.finishedAt ? Date.parse(r.finishedAt) : r.startedAt ? now : null;
    if (end !== null) last = Math.max(last ?? -Infinity, end);
    const run = runSpan(r, now);
    if (run) runs.push(run);
  }
  const finished = progress.length > 0 && progress.every((p) => p.finished);
  const elapsedSeconds = first !== null && last !== null ? Math.max(0.001, (last - first) / 1000) : null;
  const settled = done + failed;
  const settledInRuns = runs.reduce((n, run) => n + run.settled, 0);
  const rate = runs.length > 0 && settledInRuns > 0 ? settledInRuns / Math.max(0.001, busyMs(runs) / 1000) : null;
  const etaSeconds = finished ? 0 : rate ? Math.max(0, units - settled) / rate : null;
  return { documents: progress.length, byState, units, done, failed, promptTokens, completionTokens, unitsWithoutUsage, engineMs, rate, elapsedSeconds, etaSeconds, finished };
}

/** Milliseconds covered by at least one of `spans`. */
function busyMs(spans: readonly RunSpan[]): number {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  let total = 0;
  let from = -Infinity;
  let to = -Infinity;
  for (const { start, end } of sorted) {
    if (start > to) {
      if (to > from) total += to - from;
      from = start;
      to = end;
    } else to = Math.max(to, end);
  }
  if (to > from) total += to - from;
  return total;
}

/** Documents grouped by the model their run asked for (`null`: whatever the engine serves). */
export function byModel(progress: readonly DocProgress[], now = Date.now()): Array<{ model: string | null; totals: Totals }> {
  const groups = new Map<string | null, DocProgress[]>();
  for (const p of progress) {
    const key = p.record.meta.model ?? null;
    const list = groups.get(key) ?? [];
    list.push(p);
    groups.set(key, list);
  }
  return [...groups].map(([model, list]) => ({ model, totals: totalsOf(list, now) })).sort((a, b) => String(a.model).localeCompare(String(b.model)));
}

/** Records of `docIds` in their order (missing ones left out), with their progress. */
export async function readProgress(store: DocStore, docIds: string[]): Promise<DocProgress[]> {
  const out: DocProgress[] = [];
  const now = Date.now();
  for (let i = 0; i < docIds.length; i += 500) {
    for (const record of await store.getMany(docIds.slice(i, i + 500))) out.push(progressOf(record, now));
  }
  return out;
}

/**
 * Polls until every document is written (or failed); calls `onTick` after each poll, with the
 * notes of that moment. A poll comes early when one of them is announced finished
 * (finished-wakeup.ts), so the wait ends as the last one lands.
 */
export async function waitForDocs(
  store: DocStore,
  docIds: string[],
  options: {
    intervalMs?: number;
    signal?: AbortSignal;
    onTick?: (progress: DocProgress[], notes: string[]) => void;
    /** What to say besides the progress (workers.ts unservedWatch: work no worker takes). */
    notes?: (progress: DocProgress[]) => Promise<string[]>;
  } = {},
): Promise<DocProgress[]> {
  const wakeup = await finishedWakeup(store, docIds);
  let missing = new Set<string>();
  try {
    for (;;) {
      options.signal?.throwIfAborted();
      const progress = await readProgress(store, docIds);
      options.onTick?.(progress, options.notes ? await options.notes(progress).catch(() => []) : []);
      if (progress.length === docIds.length && progress.every((p) => p.finished)) return progress;
      missing = await stillMissing(store, docIds, progress, missing);
      await wakeup.sleep(options.intervalMs ?? 500);
    }
  } finally {
    wakeup.close();
  }
}

/**
 * Documents without a record two polls running (a record is there from its enqueue until it
 * expires, days after it was written): Redis lost its data, or the record was deleted. Waiting
 * would never end: DOC_GONE. A reply that is an error (Redis loading its data after a restart)
 * counts as there. Returns the ones missing this time.
 */
async function stillMissing(store: DocStore, docIds: string[], progress: DocProgress[], before: Set<string>): Promise<Set<string>> {
  if (progress.length === docIds.length) return new Set();
  const found = new Set(progress.map((p) => p.record.docId));
  const now = new Set<string>();
  for (const id of docIds) {
    if (found.has(id)) continue;
    if ((await store.redis.exists(store.docKey(id)).catch(() => 1)) === 0) now.add(id);
  }
  const gone = [...now].filter((id) => before.has(id));
  if (gone.length > 0) {
    const some = gone.slice(0, 5).join(', ') + (gone.length > 5 ? `, and ${gone.length - 5} more` : '');
    throw new DocbatchError(
      'DOC_GONE',
      `${gone.length} of the ${docIds.length} documents waited for no longer exist in Redis (${some}): Redis lost its data while they were worked on (restarted without persistence, or flushed), or they were deleted. Their progress is gone; enqueue the same files again to redo them`,
    );
  }
  return now;
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** `12.3/s`, `0.05/s`, `-` when unknown. */
export function formatRate(rate: number | null): string {
  if (rate === null || !Number.isFinite(rate)) return '-';
  return `${rate >= 10 ? rate.toFixed(1) : rate >= 0.1 ? rate.toFixed(2) : rate.toPrecision(2)}/s`;
}
