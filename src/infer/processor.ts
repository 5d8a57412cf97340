/**
 * The BullMQ processor of the `infer` queue: one unit, start to end.
 *
 * 1. A unit whose result already exists is not sent again (resume, redelivery after a crash).
 * 2. Prepare (render or read), dispatch (src/infer/dispatch.ts), and record the result at once,
 *    only while this worker still holds the job's lock.
 * 3. The call that settles a document's last unit adds its `write` job.
 * 4. An error is final when its code says so (src/errors.ts) or the unit is on its last
 *    attempt: the failure is recorded like a result and the job fails without retry.
 */
import { UnrecoverableError, type Job } from 'bullmq';
import { jobLockKey, type TypedQueue } from '../../queues/connect.ts';
import { unitJobId, type ChunkGroup, type ChunkUnit, type ReduceUnit, type UnitJobData, type UnitJobResult, type UnitJobName } from '../../queues/contracts.ts';
import { actionFor, DocbatchError, toDocbatchError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import type { DocStore } from '../store/docs.ts';
import type { DocMeta, UnitResult } from '../store/types.ts';
import { ensureWriteJob } from '../write/schedule.ts';
import { dispatchUnit, type DispatchParts } from './dispatch.ts';
import type { PreparedUnit, UnitPreparer } from './units.ts';

export interface ProcessorParts {
  store: DocStore;
  writeQueue: TypedQueue<'write'>;
  inferQueue: TypedQueue<'infer'>;
  preparer: UnitPreparer;
  dispatch: DispatchParts;
  prefix: string;
  workerName: string;
  imageSize: number;
  log: Logger;
  /** Called when a unit settles (metrics). */
  onSettled?: (data: UnitJobData, result: UnitResult) => void;
}

interface CachedDoc {
  meta: DocMeta;
  gen: number;
  at: number;
}

const DOC_CACHE_MS = 10_000;

export class UnitProcessor {
  private readonly parts: ProcessorParts;
  private readonly docs = new Map<string, CachedDoc>();

  constructor(parts: ProcessorParts) {
    this.parts = parts;
  }

  readonly process = async (job: Job<UnitJobData, UnitJobResult, UnitJobName>, token?: string, signal?: AbortSignal): Promise<UnitJobResult> => {
    const data = job.data;
    const { store, log: rootLog } = this.parts;
    const log = rootLog.child({ docId: data.docId, unit: data.unit, job: job.id });
    const abort = signal ?? new AbortController().signal;

    const existing = await store.unitResult(data.docId, data.unit);
    if (existing) return this.alreadySettled(data, existing, log);

    const doc = await this.doc(data.docId, data.gen);
    if (!doc || doc.gen !== data.gen) {
      log.info({ gen: data.gen, current: doc?.gen ?? null }, 'unit of an old generation or a deleted document; skipped');
      return { reused: true, tokens: 0 };
    }

    try {
      const { result, prepared, engineMs } = await dispatchUnit(
        this.parts.dispatch,
        (size) => this.prepare(data, doc.meta, size, abort),
        { requestId: `${data.docId}-${data.unit}`, isPage: data.kind === 'page' },
        abort,
      );
      const text = result.text.trim();
      if (!text) throw new DocbatchError('EMPTY_OUTPUT', `the engine answered with no text (finish_reason ${result.finishReason})`);
      const unitResult: UnitResult = {
        ok: true,
        text,
        promptTokens: result.usage.promptTokens,
        completionTokens: result.usage.completionTokens,
        engineMs: Math.round(engineMs),
        latencyMs: Math.round(result.latencyMs),
        model: result.model,
        finishReason: result.finishReason ?? 'unknown',
        worker: this.parts.workerName,
        ...(prepared.imageSize ? { imageSize: prepared.imageSize } : {}),
        ...(prepared.renderMs !== undefined ? { renderMs: Math.round(prepared.renderMs) } : {}),
        ...(prepared.renderer ? { renderer: prepared.renderer } : {}),
        ...(prepared.rendererFallback ? { rendererFallback: true } : {}),
      };
      await this.settle(job, token, unitResult, log);
      return { reused: false, tokens: result.usage.promptTokens + result.usage.completionTokens };
    } catch (caught) {
      const err = toDocbatchError(caught);
      if (abort.aborted || err.code === 'ABORTED') {
        // Lock lost or shutting down: someone else takes the unit over; nothing was recorded.
        log.warn({ code: 'ABORTED', reason: String(abort.reason ?? err.message) }, 'unit aborted; result discarded');
        throw err;
      }
      const attempts = job.opts.attempts ?? 1;
      const lastAttempt = job.attemptsMade + 1 >= attempts;
      const action = actionFor(err.code);
      if (action === 'fail' || action === 'shrink' || action === 'reject' || lastAttempt) {
        log.error({ code: err.code, err: err.message, attemptsMade: job.attemptsMade + 1 }, 'unit failed for good');
        await this.settle(job, token, { ok: false, code: err.code, message: err.message, worker: this.parts.workerName }, log);
        throw new UnrecoverableError(`${err.code}: ${err.message}`);
      }
      log.warn({ code: err.code, err: err.message, attemptsMade: job.attemptsMade + 1, attempts }, 'unit failed; will retry');
      throw err;
    }
  };

  private prepare(data: UnitJobData, meta: DocMeta, size: number | null, signal: AbortSignal): Promise<PreparedUnit> {
    switch (data.kind) {
      case 'page':
        return this.parts.preparer.page(data, meta, size ?? this.parts.imageSize, signal);
      case 'chunk':
        return this.parts.preparer.chunk(data);
      case 'reduce':
        return this.parts.preparer.reduce(data, this.parts.store);
    }
  }

  /**
   * Records a result (or failure) under the job's lock. The last unit of a document schedules
   * its write; the last chunk of a conversation with a summary stage schedules its reduce unit.
   */
  private async settle(job: Job<UnitJobData>, token: string | undefined, result: UnitResult, log: Logger): Promise<void> {
    const data = job.data;
    const lock = token && job.id ? { key: jobLockKey(this.parts.prefix, 'infer', job.id), token } : undefined;
    const group = data.kind === 'chunk' && data.group ? { reduce: data.group.reduce, count: data.group.count } : undefined;
    const outcome = await this.parts.store.settle(data.docId, data.gen, data.unit, result, lock, group);
    if (outcome.outcome === 'lock-lost') {
      throw new DocbatchError('ABORTED', 'the job lock was lost before the result was recorded; result discarded');
    }
    if (outcome.outcome === 'recorded') this.parts.onSettled?.(data, result);
    log.debug({ outcome: outcome.outcome, settled: outcome.settled, units: outcome.units }, 'unit settled');
    if (outcome.groupDone && data.kind === 'chunk' && data.group) await this.addReduce(data, data.group);
    if (outcome.last) {
      await ensureWriteJob(this.parts.writeQueue, data.docId, data.gen, { rerun: false });
      log.info({ units: outcome.units }, 'last unit settled; document handed to the writer');
    }
  }

  private async addReduce(data: ChunkUnit, group: ChunkGroup): Promise<void> {
    const reduce: ReduceUnit = { kind: 'reduce', docId: data.docId, gen: data.gen, unit: group.reduce, blob: data.blob, group };
    await this.parts.inferQueue.add('reduce', reduce, { jobId: unitJobId(data.docId, data.gen, group.reduce) });
  }

  /** A redelivered unit that already has a result: make sure its document is not left waiting. */
  private async alreadySettled(data: UnitJobData, existing: UnitResult, log: Logger): Promise<UnitJobResult> {
    if (data.kind === 'chunk' && data.group && (await this.parts.store.groupSettled(data.docId, data.group.reduce)) >= data.group.count) {
      await this.addReduce(data, data.group);
    }
    const record = await this.parts.store.get(data.docId);
    if (record && record.gen === data.gen && record.state !== 'written' && record.done + record.failed >= record.units) {
      await ensureWriteJob(this.parts.writeQueue, data.docId, data.gen, { rerun: false });
    }
    log.debug('unit already settled; not sent again');
    if (!existing.ok) throw new UnrecoverableError(`${existing.code}: ${existing.message}`);
    return { reused: true, tokens: 0 };
  }

  /** The document's record, cached briefly; a unit of a newer generation than the cached one refreshes it. */
  private async doc(docId: string, gen: number): Promise<CachedDoc | null> {
    const cached = this.docs.get(docId);
    if (cached && cached.gen >= gen && performance.now() - cached.at < DOC_CACHE_MS) return cached;
    const record = await this.parts.store.get(docId);
    if (!record) {
      this.docs.delete(docId);
      return null;
    }
    const entry = { meta: record.meta, gen: record.gen, at: performance.now() };
    this.docs.set(docId, entry);
    if (this.docs.size > 1000) this.docs.delete(this.docs.keys().next().value!);
    return entry;
  }
}
