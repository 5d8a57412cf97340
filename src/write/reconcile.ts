/**
 * The safety net that keeps a document from waiting forever. Units normally settle in the
 * worker; a unit BullMQ failed on its own (stalled too often while no worker was there to
 * notice), a job removed from Redis by hand, or units a feeder took but died before queueing,
 * never would. Every round the writer looks at the documents not yet written (`{p}:active`, so
 * the cost follows the work in flight, not the history): one that is complete gets its write
 * job; one still waiting its turn in the feeding round is fine; one that stopped moving is looked
 * into: units with neither a result nor a job go back into the round (a few times, then
 * UNIT_LOST), units whose job failed without a result are settled with the job's reason.
 */
import { jobKey, type TypedQueue } from '../../queues/connect.ts';
import { unitJobId } from '../../queues/contracts.ts';
import { ensureWriteJob } from '../../queues/schedule.ts';
import { ERROR_CODES } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import type { ChunkReader } from '../store/chunk-index.ts';
import type { DocStore } from '../store/docs.ts';
import type { Feeder } from '../store/feed.ts';
import { addReduce, settleUnit, type SettleParts } from '../store/settle.ts';
import type { DocRecord } from '../store/types.ts';

export interface ReconcileParts {
  store: DocStore;
  feeder: Feeder;
  chunks: ChunkReader;
  writeQueue: TypedQueue<'write'>;
  inferQueue: (name: string) => TypedQueue<'infer'>;
  log: Logger;
}

/** Times a document's lost units are queued again before they are settled as UNIT_LOST. */
const MAX_REFEEDS = 3;
/** Clocks of the producer and the feeder may differ by this much: a job made after its record may look this much older. */
const STALE_MARGIN_MS = 60_000;
/** A document still `enqueuing` this long after it was registered lost its producer. */
const ENQUEUING_LIMIT_MS = 10 * 60_000;

export class Reconciler {
  private readonly parts: ReconcileParts;
  private readonly settle: SettleParts;
  /** docId → settled count seen last round; a document is looked into after a round without progress. */
  private readonly lastSeen = new Map<string, number>();

  constructor(parts: ReconcileParts) {
    this.parts = parts;
    this.settle = { store: parts.store, writeQueue: parts.writeQueue, inferQueue: parts.inferQueue, chunks: parts.chunks };
  }

  async round(): Promise<{ settled: number; scheduled: number; refed: number }> {
    const { store } = this.parts;
    const totals = { settled: 0, scheduled: 0, refed: 0 };
    const active = await store.active();
    const seen = new Set(active);
    for (const id of this.lastSeen.keys()) if (!seen.has(id)) this.lastSeen.delete(id);
    for (let i = 0; i < active.length; i += 200) {
      for (const record of await store.getMany(active.slice(i, i + 200))) await this.look(record, totals);
    }
    return totals;
  }

  private async look(record: DocRecord, totals: { settled: number; scheduled: number; refed: number }): Promise<void> {
    const { store, feeder, log } = this.parts;
    const { docId, meta } = record;
    if (record.state === 'written' || record.state === 'failed') {
      await store.redis.zrem(store.activeKey, docId);
      return;
    }
    if (record.state === 'enqueuing') {
      if (Date.now() - Date.parse(record.createdAt) < ENQUEUING_LIMIT_MS) return;
      // Its producer died between registering and queueing: queue it now.
      await store.setState(docId, 'running');
      await feeder.add(docId, meta.queue, true);
      log.warn({ docId }, 'a document left enqueuing by a dead producer was queued');
      return;
    }
    const count = record.done + record.failed;
    if (count >= record.units) {
      await ensureWriteJob(this.parts.writeQueue, docId, record.gen);
      totals.scheduled++;
      return;
    }
    if (await feeder.inRound(docId, meta.queue)) return; // waiting its turn: nothing lost
    const previous = this.lastSeen.get(docId);
    this.lastSeen.set(docId, count);
    if (previous !== count) return; // still moving, or first look

    const have = await store.settledUnits(docId, record.gen);
    const open: number[] = [];
    for (let unit = 0; unit < record.meta.feedUnits; unit++) if (!have.has(unit)) open.push(unit);
    let lost = 0;
    for (let i = 0; i < open.length; i += 1000) {
      const slice = open.slice(i, i + 1000);
      const pipeline = store.redis.pipeline();
      for (const unit of slice) pipeline.hget(jobKey(store.prefix, meta.queue, unitJobId(docId, record.gen, unit)), 'failedReason');
      for (const unit of slice) pipeline.exists(jobKey(store.prefix, meta.queue, unitJobId(docId, record.gen, unit)));
      for (const unit of slice) pipeline.hget(jobKey(store.prefix, meta.queue, unitJobId(docId, record.gen, unit)), 'timestamp');
      const replies = (await pipeline.exec()) ?? [];
      for (let k = 0; k < slice.length; k++) {
        const unit = slice[k]!;
        const reason = replies[k]?.[1] as string | null;
        const exists = replies[slice.length + k]?.[1] === 1;
        if (exists && (await this.dropStale(meta.queue, unitJobId(docId, record.gen, unit), replies[2 * slice.length + k]?.[1] as string | null, record))) {
          lost++;
          continue;
        }
        if (!exists) {
          lost++;
          continue;
        }
        if (reason && (await this.isFailed(meta.queue, unitJobId(docId, record.gen, unit)))) {
          const failure = parseReason(reason);
          const outcome = await settleUnit(this.settle, { data: { docId, gen: record.gen, unit }, meta, result: { ok: false, ...failure } });
          if (outcome.outcome === 'recorded') {
            totals.settled++;
            log.warn({ docId, unit, code: failure.code }, 'settled a unit that had failed outside a worker');
          }
        }
      }
    }
    if (lost > 0) {
      const refeeds = await store.redis.hincrby(store.docKey(docId), 'refeeds', 1);
      if (refeeds <= MAX_REFEEDS) {
        await feeder.add(docId, meta.queue, true);
        totals.refed += lost;
        log.warn({ docId, lost, refeeds }, 'units with neither a result nor a job: queued again');
      } else {
        for (const unit of open) {
          const exists = await store.redis.exists(jobKey(store.prefix, meta.queue, unitJobId(docId, record.gen, unit)));
          if (exists) continue;
          const outcome = await settleUnit(this.settle, { data: { docId, gen: record.gen, unit }, meta, result: { ok: false, code: 'UNIT_LOST', message: `job ${unitJobId(docId, record.gen, unit)} is no longer in Redis and the unit has no result, after queueing it ${MAX_REFEEDS} times` } });
          if (outcome.outcome === 'recorded') totals.settled++;
        }
      }
    }
    await this.summaries(record, have);
  }

  /** A conversation's summary unit whose chunks all settled but that has neither a result nor a job gets its job. */
  private async summaries(record: DocRecord, have: Set<number>): Promise<void> {
    const { meta } = record;
    if (record.units <= meta.feedUnits || !meta.index) return;
    const { store, chunks } = this.parts;
    for (let unit = 0; unit < meta.feedUnits; ) {
      const entry = await chunks.entry(meta.index, unit);
      if (entry.reduce !== null && !have.has(entry.reduce)) {
        const settled = await store.groupSettled(record.docId, record.gen, entry.reduce);
        const key = jobKey(store.prefix, meta.queue, unitJobId(record.docId, record.gen, entry.reduce));
        let exists = (await store.redis.exists(key)) === 1;
        if (exists && settled >= entry.count && (await this.dropStale(meta.queue, unitJobId(record.docId, record.gen, entry.reduce), await store.redis.hget(key, 'timestamp'), record))) exists = false;
        if (settled >= entry.count && !exists) {
          const group = await chunks.group(meta.index, unit);
          if (group) await addReduce(this.settle, meta, record.gen, group);
        }
      }
      unit = entry.first + Math.max(1, entry.count);
    }
  }

  /**
   * A finished job of a unit's id made before this record was: the job of an earlier life of the
   * document, whose record expired (RETENTION_DAYS) while BullMQ's history still held the job
   * (it prunes by age only as other jobs finish: an idle queue keeps them). The unit's new job
   * was ignored for it (same id), so the unit would wait for ever, or be settled with that old
   * job's failure. Removed (true): the unit is queued again like a lost one.
   */
  private async dropStale(queue: string, jobId: string, timestamp: string | null, record: DocRecord): Promise<boolean> {
    const created = Date.parse(record.createdAt);
    if (timestamp === null || !Number.isFinite(created) || Number(timestamp) >= created - STALE_MARGIN_MS) return false;
    const { store } = this.parts;
    const finished = (await store.redis.zscore(`${store.prefix}:${queue}:failed`, jobId)) !== null || (await store.redis.zscore(`${store.prefix}:${queue}:completed`, jobId)) !== null;
    if (!finished) return false;
    await this.parts.inferQueue(queue).remove(jobId);
    this.parts.log.warn({ docId: record.docId, job: jobId }, 'removed a finished job left from an earlier life of this document (its record expired); its unit is queued again');
    return true;
  }

  private async isFailed(queue: string, jobId: string): Promise<boolean> {
    return (await this.parts.store.redis.zscore(`${this.parts.store.prefix}:${queue}:failed`, jobId)) !== null;
  }
}

/**
 * "CODE: message" as the processor writes it (a docbatch code: ERROR_CODES), or BullMQ's own
 * reason (stalled). Anything else (a system error's "ENOENT: ...", "ECONNRESET: ...") is kept whole
 * under INTERNAL: its first word is no code of ours, and a report must list only stable codes.
 */
export function parseReason(reason: string): { code: string; message: string } {
  const m = /^([A-Z][A-Z0-9_]+): ([\s\S]*)$/.exec(reason);
  if (m && m[1]! in ERROR_CODES) return { code: m[1]!, message: m[2]! };
  if (/stalled|started more than/i.test(reason)) return { code: 'UNIT_STALLED', message: reason };
  return { code: 'INTERNAL', message: reason };
}
