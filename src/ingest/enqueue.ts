/**
 * Prepared documents → Redis: register each document, add one `infer` job per unit that has no
 * result yet (addBulk, deterministic job ids, waiting while the queue is deeper than a bound),
 * and make sure a finished document gets its `write` job. Safe to run again on the same files:
 * the same content is the same document, finished units are never re-sent, and a producer killed
 * half-way leaves nothing a rerun does not complete.
 */
import { access } from 'node:fs/promises';
import type { JobsOptions } from 'bullmq';
import { unitJobId, type UnitJobData } from '../../queues/contracts.ts';
import type { TypedQueue } from '../../queues/connect.ts';
import { InputError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import type { DocStore } from '../store/docs.ts';
import type { DocMeta, DocRecord } from '../store/types.ts';
import { ensureWriteJob } from '../../queues/schedule.ts';
import type { PreparedDoc } from './prepare.ts';

export interface EnqueueOptions {
  /** Redo finished documents from scratch (new generation). */
  force: boolean;
  /** Output directory recorded with the document (the writer's own when absent). */
  outDir?: string;
  /** Wait while more than this many units are waiting. */
  maxQueued: number;
  /** Units added per addBulk call. @defaultValue 1000 */
  bulkSize?: number;
  /** Names (base names) that occur more than once in this command: they all get the hash suffix. */
  clashingNames?: Set<string>;
  signal?: AbortSignal;
}

export type EnqueueOutcome =
  /** New document, or a new generation (--force): every unit added. */
  | 'enqueued'
  /** Known document, unfinished: only units without a result were (re)added. */
  | 'resumed'
  /** Known document whose outputs exist: nothing to do. */
  | 'done'
  /** Every unit had a result but the outputs are missing: only the write job was added. */
  | 'rewrite';

export interface EnqueueReport {
  docId: string;
  gen: number;
  outcome: EnqueueOutcome;
  name: string;
  units: number;
  /** Units added as jobs by this call. */
  added: number;
  /** Units that already had a result. */
  settled: number;
}

export class Producer {
  private readonly store: DocStore;
  private readonly infer: TypedQueue<'infer'>;
  private readonly write: TypedQueue<'write'>;
  private readonly log: Logger;

  constructor(parts: { store: DocStore; infer: TypedQueue<'infer'>; write: TypedQueue<'write'>; log: Logger }) {
    this.store = parts.store;
    this.infer = parts.infer;
    this.write = parts.write;
    this.log = parts.log;
  }

  async enqueue(doc: PreparedDoc, options: EnqueueOptions): Promise<EnqueueReport> {
    const existing = await this.store.get(doc.docId);
    const now = new Date().toISOString();

    if (existing && !options.force && existing.gen > 0) {
      if (existing.units !== doc.units.length || existing.meta.blob !== doc.blob) {
        throw new InputError(
          'DOC_CONFLICT',
          `this content was enqueued before as ${doc.docId} with other settings (${existing.units} units, now ${doc.units.length}); let it finish, or redo it with --force`,
          { place: { file: doc.source } },
        );
      }
      const settled = await this.store.settledUnits(doc.docId);
      if (settled.size === existing.units) {
        if (existing.state === 'written' && (await filesExist(existing.files))) {
          return report(existing, 'done', 0, settled.size);
        }
        await this.store.setState(doc.docId, 'complete');
        await ensureWriteJob(this.write, doc.docId, existing.gen, { rerun: existing.state === 'written' });
        return report(existing, 'rewrite', 0, settled.size);
      }
      const added = await this.addUnits(doc, existing, settled, options);
      await this.finishEnqueuing(doc.docId, existing.gen);
      return report(existing, 'resumed', added, settled.size);
    }

    const name = await this.store.claimName(
      options.clashingNames?.has(doc.baseName) ? `${doc.baseName}-${doc.sha256.slice(0, 8)}` : doc.baseName,
      doc.docId,
      doc.sha256,
    );
    const meta: DocMeta = {
      docId: doc.docId,
      kind: doc.kind,
      source: doc.source,
      sha256: doc.sha256,
      name,
      ...(options.outDir ? { outDir: options.outDir } : {}),
      units: doc.units.length,
      blob: doc.blob,
      ...(doc.format ? { format: doc.format } : {}),
      ...(doc.stats ? { stats: doc.stats } : {}),
      ...(doc.password ? { password: doc.password } : {}),
      ...(doc.conversationSummary ? { conversationSummary: true } : {}),
      enqueuedAt: now,
    };
    const record = await this.store.register(meta, { reset: options.force || existing !== null, now });
    const added = await this.addUnits(doc, record, new Set(), options);
    await this.finishEnqueuing(doc.docId, record.gen);
    return report(record, 'enqueued', added, 0);
  }

  /** Adds a job for every unit without a result, in bulk, waiting while the queue is deep. */
  private async addUnits(doc: PreparedDoc, record: DocRecord, settled: Set<number>, options: EnqueueOptions): Promise<number> {
    const bulkSize = options.bulkSize ?? 1000;
    let added = 0;
    let batch: Array<{ name: UnitJobData['kind']; data: UnitJobData; opts: JobsOptions }> = [];
    const flush = async () => {
      if (batch.length === 0) return;
      await this.waitForRoom(options.maxQueued, options.signal);
      await this.infer.addBulk(batch);
      added += batch.length;
      batch = [];
    };
    for (let unit = 0; unit < doc.units.length; unit++) {
      if (settled.has(unit)) continue;
      const ref = doc.units[unit]!;
      const base = { docId: doc.docId, gen: record.gen, unit };
      let data: UnitJobData;
      if (ref.kind === 'page') data = { ...base, kind: 'page', blob: doc.blob, page: ref.page };
      else if (ref.kind === 'chunk') data = { ...base, kind: 'chunk', blob: doc.blob, offset: ref.offset, length: ref.length, ...(ref.group ? { group: ref.group } : {}) };
      else {
        // A summary waits for its chunks; a resumed document whose chunks all settled gets it now.
        if ((await this.store.groupSettled(doc.docId, ref.group.reduce)) < ref.group.count) continue;
        data = { ...base, kind: 'reduce', blob: doc.blob, group: ref.group };
      }
      batch.push({ name: ref.kind, data, opts: { jobId: unitJobId(doc.docId, record.gen, unit) } });
      if (batch.length >= bulkSize) await flush();
    }
    await flush();
    this.log.debug({ docId: doc.docId, added }, 'units added');
    return added;
  }

  /** Backpressure: wait while more than `maxQueued` units are waiting to be taken. */
  private async waitForRoom(maxQueued: number, signal?: AbortSignal): Promise<void> {
    let announced = false;
    for (;;) {
      signal?.throwIfAborted();
      const waiting = await this.infer.getWaitingCount();
      if (waiting < maxQueued) return;
      if (!announced) {
        this.log.info({ waiting, maxQueued }, 'queue is deep; waiting for workers before adding more');
        announced = true;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** enqueuing → running (or complete, when every unit already settled meanwhile). */
  private async finishEnqueuing(docId: string, gen: number): Promise<void> {
    const state = await this.store.redis.eval(
      `if redis.call('HGET', KEYS[1], 'state') ~= 'enqueuing' then return redis.call('HGET', KEYS[1], 'state') end
       if redis.call('HLEN', KEYS[2]) >= tonumber(redis.call('HGET', KEYS[1], 'units')) then
         redis.call('HSET', KEYS[1], 'state', 'complete') return 'complete' end
       redis.call('HSET', KEYS[1], 'state', 'running') return 'running'`,
      2,
      this.store.docKey(docId),
      this.store.unitsKey(docId),
    );
    if (state === 'complete') await ensureWriteJob(this.write, docId, gen, { rerun: false });
  }
}

function report(record: DocRecord, outcome: EnqueueOutcome, added: number, settled: number): EnqueueReport {
  return { docId: record.docId, gen: record.gen, outcome, name: record.meta.name, units: record.units, added, settled };
}

async function filesExist(files: string[]): Promise<boolean> {
  if (files.length === 0) return false;
  try {
    await Promise.all(files.map((f) => access(f)));
    return true;
  } catch {
    return false;
  }
}
