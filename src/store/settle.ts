/**
 * Settling a unit: the one function every path calls (the worker's processor, its handler for
 * jobs BullMQ failed by itself, the reconciler, retry). In one place: record the result under the
 * job's lock (first write wins), count the chunk towards its conversation's summary, add that
 * summary's unit when its last chunk settled, and hand the document to the writer when its last
 * unit settled.
 */
import { unitJobId, type ChunkGroup, type UnitJobData } from '../../queues/contracts.ts';
import type { TypedQueue } from '../../queues/connect.ts';
import { ensureWriteJob } from '../../queues/schedule.ts';
import type { ChunkReader } from './chunk-index.ts';
import type { DocStore } from './docs.ts';
import type { CountedSpend, DocMeta, SettleOutcome, UnitResult } from './types.ts';

export interface SettleParts {
  store: DocStore;
  writeQueue: TypedQueue<'write'>;
  /** The infer queue of a given name (a conversation's summary unit goes to its document's queue). */
  inferQueue: (name: string) => TypedQueue<'infer'>;
  chunks: ChunkReader;
}

/** Whether a document's chunks count towards conversation summaries (their index says which). */
export function hasGroups(meta: DocMeta): boolean {
  return meta.kind === 'chat' && meta.index !== undefined && (meta.conversationSummary === true || meta.task.unit === 'conversation');
}

/** The conversation group a unit counts towards, or null. */
export async function groupFor(parts: Pick<SettleParts, 'chunks'>, meta: DocMeta, data: UnitJobData): Promise<ChunkGroup | null> {
  if (data.reduce || !hasGroups(meta) || data.unit >= meta.feedUnits) return null;
  return parts.chunks.group(meta.index!, data.unit);
}

export interface SettleRequest {
  data: UnitJobData;
  meta: DocMeta;
  result: UnitResult;
  /** The job's lock: the result is written only while it still holds this token. */
  lock?: { key: string; token: string };
  /** The record's `reopens` when the unit read its inputs (summaries): a reopen since refuses it. */
  reopens?: number;
  /** What of the result's tokens and engine time the record counts already (its rejected answers, counted as they came). */
  counted?: CountedSpend;
  /**
   * The settle's id (SETTLE_LUA): give one answer the same on every try (a held answer tried again
   * after a try that went through, its reply refused part-way, then adds nothing). @defaultValue a new one
   */
  id?: string;
}

export async function settleUnit(parts: SettleParts, request: SettleRequest): Promise<SettleOutcome> {
  const { data, meta, result } = request;
  const group = await groupFor(parts, meta, data);
  const outcome = await parts.store.settle(data.docId, data.gen, data.unit, result, request.lock, group ? { reduce: group.reduce, count: group.count } : undefined, undefined, request.reopens, request.counted, request.id);
  if (outcome.groupDone && group) await addReduce(parts, meta, data.gen, group);
  if (outcome.last) await ensureWriteJob(parts.writeQueue, data.docId, data.gen);
  // Run again after its reply was lost: what its first run made due may not exist yet.
  if (outcome.again) await ensureDue(parts, meta, data);
  return outcome;
}

/** Adds a conversation's summary unit (idempotent: its job id is its unit's). */
export async function addReduce(parts: Pick<SettleParts, 'inferQueue'>, meta: DocMeta, gen: number, group: ChunkGroup): Promise<void> {
  const data: UnitJobData = { docId: meta.docId, gen, unit: group.reduce, reduce: group };
  await parts.inferQueue(meta.queue).add('reduce', data, { jobId: unitJobId(meta.docId, gen, group.reduce) });
}

/**
 * A unit that already has a result was delivered again (resume, redelivery after a crash):
 * make sure what its settling made due exists (its conversation's summary unit, its document's
 * write), since the first settle may have died before adding them.
 */
export async function ensureDue(parts: SettleParts, meta: DocMeta, data: UnitJobData): Promise<void> {
  const group = await groupFor(parts, meta, data);
  if (group && (await parts.store.groupSettled(data.docId, data.gen, group.reduce)) >= group.count && !(await parts.store.unitResult(data.docId, data.gen, group.reduce))) {
    await addReduce(parts, meta, data.gen, group);
  }
  const record = await parts.store.get(data.docId);
  if (record && record.gen === data.gen && record.state !== 'written' && record.state !== 'failed' && record.done + record.failed >= record.units) {
    await ensureWriteJob(parts.writeQueue, data.docId, data.gen);
  }
}
