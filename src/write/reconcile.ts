/**
 * The safety net that keeps a document from waiting forever. Units normally settle in the
 * worker; a unit BullMQ failed on its own (stalled too often while no worker was there to
 * notice), or a job removed from Redis by hand, never would. Every `intervalMs` the writer looks
 * at documents that have stopped moving and settles such units as failures; a document whose
 * units have all settled but that has no write job gets one.
 */
import { unitJobId } from '../../queues/contracts.ts';
import type { TypedQueue } from '../../queues/connect.ts';
import type { Logger } from '../observe/log.ts';
import type { DocStore } from '../store/docs.ts';
import { ensureWriteJob } from '../../queues/schedule.ts';

export interface ReconcileParts {
  store: DocStore;
  infer: TypedQueue<'infer'>;
  write: TypedQueue<'write'>;
  log: Logger;
}

export class Reconciler {
  private readonly parts: ReconcileParts;
  /** docId → settled count seen last round; a document is looked into after a round without progress. */
  private readonly lastSeen = new Map<string, number>();

  constructor(parts: ReconcileParts) {
    this.parts = parts;
  }

  async round(): Promise<{ settled: number; scheduled: number }> {
    const { store, log } = this.parts;
    let settled = 0;
    let scheduled = 0;
    for (const docId of await store.list(10_000)) {
      const record = await store.get(docId);
      if (!record || record.state === 'written' || record.state === 'enqueuing') {
        this.lastSeen.delete(docId);
        continue;
      }
      const count = record.done + record.failed;
      if (count >= record.units) {
        await ensureWriteJob(this.parts.write, docId, record.gen, { rerun: false });
        scheduled++;
        continue;
      }
      const previous = this.lastSeen.get(docId);
      this.lastSeen.set(docId, count);
      if (previous !== count) continue; // still moving, or first look

      const have = await store.settledUnits(docId);
      for (let unit = 0; unit < record.units; unit++) {
        if (have.has(unit)) continue;
        const id = unitJobId(docId, record.gen, unit);
        const job = await this.parts.infer.getJob(id);
        let failure: { code: string; message: string } | null = null;
        if (!job) {
          failure = { code: 'UNIT_LOST', message: `job ${id} is no longer in Redis and the unit has no result` };
        } else if ((await job.getState()) === 'failed') {
          // BullMQ leaves a job in `failed` only once it will not retry it.
          failure = parseReason(job.failedReason ?? 'failed');
        }
        if (!failure) continue;
        const outcome = await store.settle(docId, record.gen, unit, { ok: false, ...failure });
        if (outcome.outcome === 'recorded') {
          settled++;
          log.warn({ docId, unit, code: failure.code }, 'settled a unit that had failed outside a worker');
        }
        if (outcome.last) {
          await ensureWriteJob(this.parts.write, docId, record.gen, { rerun: false });
          scheduled++;
        }
      }
    }
    return { settled, scheduled };
  }
}

/** "CODE: message" as the processor writes it, or BullMQ's own reason (stalled). */
export function parseReason(reason: string): { code: string; message: string } {
  const m = /^([A-Z][A-Z0-9_]+): ([\s\S]*)$/.exec(reason);
  if (m) return { code: m[1]!, message: m[2]! };
  if (/stalled|started more than/i.test(reason)) return { code: 'UNIT_STALLED', message: reason };
  return { code: 'INTERNAL', message: reason };
}
