/**
 * Running failed units of a document again (`docbatch retry`, the dashboard's Retry, a Bull
 * Board retry of one failed unit) and writing documents again (a failed write, outputs deleted
 * since). Successful units are never sent again: a written document's results come back from its
 * archive first, only the failed ones are reopened, and the writer rewrites the outputs once they
 * settle.
 *
 * A reopened unit's old job, failed and kept in BullMQ's history, would swallow the new one (same
 * job id: BullMQ ignores the add), and the document's finished write job would swallow its new
 * write: both are removed, so the units run with fresh attempts and the document is written again.
 *
 * A reopen may land during a write (the write then is not marked written: docs/design.md) or
 * beside another reopen of the same written document (the archive is restored once, whole).
 */
import type { TypedQueue } from '../../queues/connect.ts';
import { unitJobId } from '../../queues/contracts.ts';
import { ensureWriteJob } from '../../queues/schedule.ts';
import { DocbatchError } from '../errors.ts';
import { restoreArchived } from './archive.ts';
import type { BlobStore } from './blobs.ts';
import type { ChunkReader } from './chunk-index.ts';
import type { DocStore } from './docs.ts';
import type { Feeder } from './feed.ts';
import { addReduce, hasGroups } from './settle.ts';
import type { DocMeta, DocRecord } from './types.ts';

export interface ReopenParts {
  store: DocStore;
  blobs: BlobStore;
  chunks: ChunkReader;
  feeder: Feeder;
  writeQueue: TypedQueue<'write'>;
  inferQueue: (name: string) => TypedQueue<'infer'>;
}

export interface ReopenOutcome {
  docId: string;
  /** Units that will run again. */
  reopened: number[];
  /** A write was scheduled without any unit running again (failed write, or outputs gone). */
  rewrite: boolean;
}

/**
 * Reopens the failed units of a document matching `codes` ([] = every failure) among `units`
 * ([] = all), or schedules a rewrite when none match but its write failed (or `rewrite`).
 * `keepFailures` reopens nothing: with `rewrite`, the outputs are written again as they were
 * (enqueueing a written file whose outputs are gone).
 */
export async function reopenDocument(parts: ReopenParts, record: DocRecord, filter: { codes?: string[]; units?: number[]; rewrite?: boolean; keepFailures?: boolean } = {}): Promise<ReopenOutcome> {
  const { store } = parts;
  const { docId, gen, meta } = record;
  const { reopened, summaries } = await restoreAndReopen(parts, record, filter);
  if (reopened.length > 0) {
    await clearFinishedJobs(parts, record, reopened);
    await restoreFeedFields(store, meta);
    // Chunks and pages go back into the feeding round; a conversation's summary whose chunks all
    // stand goes straight back to its queue (otherwise its last chunk adds it again).
    if (reopened.some((u) => u < meta.feedUnits)) {
      await parts.feeder.add(docId, meta.queue, true);
      await parts.feeder.feed(meta.queue, Math.min(reopened.length, 1000));
    }
    for (const unit of reopened.filter((u) => u >= meta.feedUnits)) {
      // A summary whose reopened chunks are to run again is added when they have all settled.
      if (Object.entries(summaries).some(([chunk, r]) => r === unit && reopened.includes(Number(chunk)))) continue;
      const group = await groupOfSummary(parts, record, unit);
      if (group) await addReduce(parts, meta, gen, group);
    }
    return { docId, reopened, rewrite: false };
  }
  if (record.state === 'failed' || filter.rewrite) {
    // The restored results stay until the write retires them.
    await store.redis.multi().hset(store.docKey(docId), { state: 'complete' }).hdel(store.docKey(docId), 'write_error').persist(store.docKey(docId)).persist(store.unitsKey(docId, gen)).persist(store.noUsageKey(docId, gen)).zadd(store.activeKey, Date.now(), docId).exec();
    await ensureWriteJob(parts.writeQueue, docId, gen);
    return { docId, reopened, rewrite: true };
  }
  return { docId, reopened, rewrite: false };
}

/**
 * A written or failed document written again into another output folder: its results come back
 * from the archive, then DocStore.moveOutputs points the record at `meta`'s folder and name and
 * makes it complete in one step, and the write job is queued. True too when another mover took
 * it to that very folder and name meanwhile; false when the record changed otherwise (nothing
 * moved; restored results expire within the hour).
 */
export async function moveAndRewrite(parts: ReopenParts, record: DocRecord, meta: DocMeta): Promise<boolean> {
  const { store } = parts;
  const { docId, gen } = record;
  if (!(await restoreArchived(store, parts.blobs, docId, gen)) && record.units > 0) {
    throw new DocbatchError('BLOB_MISSING', `the results of ${docId} are neither in Redis nor archived in the blob store (collected?); enqueue the file again with --force to redo it`);
  }
  if (!(await store.moveOutputs(docId, gen, record.state, record.meta, meta))) {
    const now = await store.get(docId);
    return now !== null && now.gen === gen && now.meta.outSub === meta.outSub && now.meta.name === meta.name;
  }
  await ensureWriteJob(parts.writeQueue, docId, gen);
  return true;
}

/**
 * A written document's results come back from its archive first, then the matching failures are
 * reopened. Should the document be written again between the two (another retry's units settled
 * meanwhile), its results are gone again: restore and reopen once more.
 */
async function restoreAndReopen(parts: ReopenParts, record: DocRecord, filter: { codes?: string[]; units?: number[]; keepFailures?: boolean }): Promise<{ reopened: number[]; summaries: Record<number, number> }> {
  const { store } = parts;
  const { docId, gen, meta } = record;
  for (let attempt = 0, state = record.state; attempt < 5; attempt++, state = 'written') {
    if (state === 'written' || state === 'failed' || state === 'complete') {
      if (!(await restoreArchived(store, parts.blobs, docId, gen)) && record.units > 0) {
        throw new DocbatchError('BLOB_MISSING', `the results of ${docId} are neither in Redis nor archived in the blob store (collected?); enqueue the file again with --force to redo it`);
      }
    }
    if (filter.keepFailures) return { reopened: [], summaries: {} };
    // Their finished jobs go first, and what the feeder reads comes back into a lean (written)
    // record: a retry killed right after the reopen leaves units with neither a result nor a
    // job, which the reconciler queues again. Done after it (as before), the old failed jobs
    // stayed and the reconciler settled their old failures again, or the feeder found nothing
    // to feed and the units ended UNIT_LOST.
    const failing = await failingUnits(store, docId, gen, filter);
    await clearFinishedJobs(parts, record, failing);
    if (failing.length > 0) await restoreFeedFields(store, meta);
    const summaries: Record<number, number> = {};
    const groups: Record<number, [number, number]> = {};
    let units = filter.units ?? [];
    if (hasGroups(meta)) {
      const candidates = filter.units?.length ? filter.units : [...(await store.settledUnits(docId, gen))];
      // Only the units mapped here are reopened: a chunk settling after this read must not be
      // dropped without its summary's count (the script would read every result otherwise).
      if (units.length === 0) units = candidates.length > 0 ? candidates : [-1];
      for (const unit of candidates) {
        if (unit >= meta.feedUnits) continue;
        const group = await parts.chunks.group(meta.index!, unit);
        if (!group) continue;
        summaries[unit] = group.reduce;
        groups[group.reduce] = [group.first, group.count];
      }
    }
    const out = await store.reopen(docId, gen, { codes: filter.codes ?? [], units, summaries, groups });
    if (out !== 'retired') return { reopened: out.sort((a, b) => a - b), summaries };
  }
  throw new DocbatchError('ARCHIVE_CHANGED', `the results of ${docId} left Redis again each time they were restored from its archive, 5 times (written again meanwhile, or an empty archive); nothing was reopened: retry again`, { place: { file: record.meta.source } });
}

/** A written record was made lean (store.markWritten): what the feeder reads comes back. */
async function restoreFeedFields(store: DocStore, meta: DocMeta): Promise<void> {
  await store.redis.hset(store.docKey(meta.docId), { feed_end: meta.feedUnits, job_name: jobNameOf(meta), queue: meta.queue, priority: meta.priority });
}

/** Units of the generation whose result is a failure the filter matches (the ones a reopen takes). */
async function failingUnits(store: DocStore, docId: string, gen: number, filter: { codes?: string[]; units?: number[] }): Promise<number[]> {
  const codes = filter.codes ?? [];
  const matches = (value: string | null) => {
    if (value === null || !value.includes('"ok":false')) return false;
    const result = JSON.parse(value) as { ok?: boolean; code?: string };
    return result.ok === false && (codes.length === 0 || codes.includes(result.code ?? ''));
  };
  const key = store.unitsKey(docId, gen);
  const out: number[] = [];
  if (filter.units?.length) {
    const values = await store.redis.hmget(key, ...filter.units.map(String));
    filter.units.forEach((unit, i) => matches(values[i] ?? null) && out.push(unit));
    return out;
  }
  let cursor = '0';
  do {
    const [next, entries] = await store.redis.hscan(key, cursor, 'COUNT', 1000);
    cursor = next;
    for (let i = 0; i < entries.length; i += 2) if (matches(entries[i + 1]!)) out.push(Number(entries[i]));
  } while (cursor !== '0');
  return out;
}

/**
 * A reopened unit's job of the same generation still sits in BullMQ's failed set (kept a week for
 * the dashboard): feeding the unit again would add a job with the same id, which BullMQ ignores,
 * and the unit would never run. Finished jobs of the reopened units are removed first; a job
 * that is running (a Bull Board Retry of that very unit) is left alone.
 */
async function clearFinishedJobs(parts: ReopenParts, record: DocRecord, units: number[]): Promise<void> {
  const queue = parts.inferQueue(record.meta.queue);
  for (let i = 0; i < units.length; i += 50) {
    await Promise.all(
      units.slice(i, i + 50).map(async (unit) => {
        const job = await queue.getJob(unitJobId(record.docId, record.gen, unit));
        if (!job) return;
        const state = await job.getState();
        if (state === 'failed' || state === 'completed') await job.remove();
      }),
    );
  }
}

/** What a document's unit jobs are called (page, document, chunk, conversation). */
export function jobNameOf(meta: DocRecord['meta']): string {
  if (meta.kind === 'chat') return meta.task.unit === 'conversation' ? 'conversation' : 'chunk';
  return meta.task.unit === 'document' ? 'document' : 'page';
}

/** The group a conversation's summary unit reduces (found through its chunks' index entries). */
async function groupOfSummary(parts: ReopenParts, record: DocRecord, reduce: number) {
  const { meta } = record;
  if (!meta.index) return null;
  // Summary units follow the chunks in conversation order: walk conversations by their first chunk.
  for (let unit = 0; unit < meta.feedUnits; ) {
    const entry = await parts.chunks.entry(meta.index, unit);
    if (entry.reduce === reduce) return parts.chunks.group(meta.index, unit);
    unit = entry.first + Math.max(1, entry.count);
  }
  return null;
}

