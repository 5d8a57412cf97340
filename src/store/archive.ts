/**
 * The results of a written document, kept outside Redis: once its outputs are written, a
 * document's results move to a named object in the blob store (`results/<docId>/<gen>.jsonl`, one
 * `[unit, result]` line each) and leave Redis. They come back only for `docbatch retry`, a
 * Bull Board retry of a failed unit, or a rewrite of outputs deleted since: successful units are
 * never sent again. The archive goes when the document's record expires (docbatch gc).
 *
 * A restore is whole or nothing, and happens only while the results are not in Redis: restored
 * results expire within the hour unless a reopen keeps them (docs.ts restoreResults).
 */
import type { BlobStore } from './blobs.ts';
import type { DocStore } from './docs.ts';
import type { UnitResult } from './types.ts';

export function archiveKey(docId: string, gen: number): string {
  return `results/${docId}/${gen}.jsonl`;
}

/** Copies a generation's results from Redis into the archive (whole or not at all). */
export async function archiveResults(store: DocStore, blobs: BlobStore, docId: string, gen: number, units: number): Promise<number> {
  const lines: string[] = [];
  for await (const [unit, result] of store.results(docId, gen, units)) {
    if (result) lines.push(JSON.stringify([unit, result]));
  }
  await blobs.putNamed(archiveKey(docId, gen), lines.length > 0 ? `${lines.join('\n')}\n` : '');
  return lines.length;
}

/**
 * Puts an archived generation's results back into Redis (when they are not there already), whole
 * or not at all, and never an archive older than a write that ended while it was read (two
 * retries of one written document at once: the second finds the first's results, or reads the
 * archive again). Returns false when there is no archive to restore from.
 */
export async function restoreArchived(store: DocStore, blobs: BlobStore, docId: string, gen: number): Promise<boolean> {
  for (let attempt = 0; attempt < 5; attempt++) {
    // Read before the archive: a reopen after this makes the archive read suspect.
    const state = await store.restoreState(docId, gen);
    if (!state || state.present) return true; // a stale generation is the reopen's to report
    const bytes = await blobs.getNamed(archiveKey(docId, gen));
    if (bytes === null) return false;
    const entries: Array<[number, string]> = [];
    for (const line of bytes.toString('utf8').split('\n')) {
      if (!line) continue;
      const [unit, result] = JSON.parse(line) as [number, unknown];
      entries.push([unit, JSON.stringify(result)]);
    }
    if ((await store.restoreResults(docId, gen, entries, state.reopens)) !== 'changed') return true;
  }
  throw new Error(`the results of ${docId} kept changing while they were being restored; retry again`);
}

/** One unit's archived result (null when there is no archive or no result for it). */
export async function archivedResult(blobs: BlobStore, docId: string, gen: number, unit: number): Promise<UnitResult | null> {
  const bytes = await blobs.getNamed(archiveKey(docId, gen));
  if (bytes === null) return null;
  const prefix = `[${unit},`;
  for (const line of bytes.toString('utf8').split('\n')) {
    if (line.startsWith(prefix)) return (JSON.parse(line) as [number, UnitResult])[1];
  }
  return null;
}
