/**
 * How far documents are: units settled of all, rate, time left. Read from the doc records, so
 * any process (enqueue --wait, status, the dashboard) sees the same numbers.
 */
import type { DocStore } from '../store/docs.ts';
import type { DocRecord } from '../store/types.ts';

export interface DocProgress {
  record: DocRecord;
  settled: number;
  /** Units per second since the first unit started, null before two samples. */
  rate: number | null;
  /** Seconds left at the current rate, null when unknown. */
  etaSeconds: number | null;
  finished: boolean;
}

export function progressOf(record: DocRecord, now = Date.now()): DocProgress {
  const settled = record.done + record.failed;
  const finished = record.state === 'written' || record.state === 'failed';
  const start = record.startedAt ? Date.parse(record.startedAt) : null;
  const end = finished && record.finishedAt ? Date.parse(record.finishedAt) : now;
  const elapsed = start !== null ? Math.max(0.001, (end - start) / 1000) : null;
  const rate = elapsed !== null && settled > 0 ? settled / elapsed : null;
  const etaSeconds = finished ? 0 : rate ? (record.units - settled) / rate : null;
  return { record, settled, rate, etaSeconds, finished };
}

export async function readProgress(store: DocStore, docIds: string[]): Promise<DocProgress[]> {
  const out: DocProgress[] = [];
  for (const id of docIds) {
    const record = await store.get(id);
    if (record) out.push(progressOf(record));
  }
  return out;
}

/** Polls until every document is written; calls `onTick` after each poll. */
export async function waitForDocs(
  store: DocStore,
  docIds: string[],
  options: { intervalMs?: number; signal?: AbortSignal; onTick?: (progress: DocProgress[]) => void } = {},
): Promise<DocProgress[]> {
  for (;;) {
    options.signal?.throwIfAborted();
    const progress = await readProgress(store, docIds);
    options.onTick?.(progress);
    if (progress.length === docIds.length && progress.every((p) => p.finished)) return progress;
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 500));
  }
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
