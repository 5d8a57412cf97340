/**
 * The BullMQ processor of the infer queues: one unit, start to end.
 *
 * 1. A unit of a stale generation is skipped. A unit that already has an answer is not sent again
 *    (resume, redelivery after a crash); nor is one whose failure is recorded and whose job came
 *    back as stalled (its worker died before BullMQ heard of the failure). One that has a failure
 *    and was not stalled was retried by hand (Bull Board's Retry): the failure is reopened and the
 *    unit runs.
 * 2. Ask for its answer (ask.ts): prepare (render or read), send (dispatch.ts: the engine's
 *    faults), and judge the answer (src/task/answer.ts), asking again at a rising temperature
 *    until one passes; after the last try a page may fall back to its own text layer.
 * 3. Settle (src/store/settle.ts, the one function every path uses) under the job's lock; an
 *    answer whose lock was lost meanwhile is recorded only where no result is (first write wins).
 *    While Redis is full the result is held until it has room (hold.ts): no attempt used.
 * 4. An error is final when its code says so (src/errors.ts) or the unit is on its last attempt:
 *    the failure is settled like a result and the job fails without retry. A fault of this
 *    worker's environment, or an engine down for too long, hands the unit back unchanged. A
 *    record that loads while its task does not (a missing blob) is settled the same way; every
 *    reason BullMQ keeps reads "CODE: message", for the reconciler to settle what we could not.
 *    What an attempt's answers cost (tokens, engine time) is counted either way: with the
 *    failure settled, or in the record at once (DocStore.addSpent) when the unit is tried again,
 *    handed back or aborted, or when its answer or failure finds the unit settled by another
 *    (a worker whose lock was lost recorded its own answer meanwhile). A rejected answer is
 *    counted at once, before the unit is asked again (a worker killed then would take its cost
 *    with it); the settle adds only what was not counted so far.
 */
import { DelayedError, UnrecoverableError, WaitingError, type Job } from 'bullmq';
import { jobLockKey } from '../../queues/connect.ts';
import type { UnitJobData, UnitJobName, UnitJobResult } from '../../queues/contracts.ts';
import { EngineError } from '../engine/classify.ts';
import { actionFor, DocbatchError, toDocbatchError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import type { BlobStore } from '../store/blobs.ts';
import type { DocStore } from '../store/docs.ts';
import { archivedResult } from '../store/archive.ts';
import { reopenDocument, type ReopenParts } from '../store/reopen.ts';
import { ensureDue, settleUnit, type SettleParts, type SettleRequest } from '../store/settle.ts';
import { newSettleId } from '../store/settle-spend.ts';
import type { DocMeta, DocState, SettleOutcome, UnitResult } from '../store/types.ts';
import type { Task } from '../task/types.ts';
import type { TokenCounts } from '../usage.ts';
import { AnswerRejected, askUntilAccepted } from './ask.ts';
import { countSpent, newAttempt, spentAny, type Attempt } from './attempt.ts';
import { FinalUnitError, ReleaseUnit, type DispatchParts } from './dispatch.ts';
import type { AnswerHold } from './hold.ts';
import { PartsPending, type UnitPreparer } from './units.ts';

export interface ProcessorParts {
  store: DocStore;
  blobs: BlobStore;
  settle: SettleParts;
  reopen: ReopenParts;
  preparer: UnitPreparer;
  /** Holds a unit's result while Redis is full, until it can be recorded. */
  hold: AnswerHold;
  dispatch: DispatchParts;
  workerName: string;
  log: Logger;
  /** Whether this worker's model takes images (null: not known). */
  acceptsImages: () => boolean | null;
  /** A fault of this worker's own environment: stop taking work until it passes. */
  onEnvironmentError: (err: DocbatchError) => void;
  /** Called when a unit settles (metrics, events). */
  onSettled?: (data: UnitJobData, meta: DocMeta, result: UnitResult) => void;
}

interface DocEntry {
  meta: DocMeta;
  gen: number;
  task: Task;
  /** This worker has marked the generation started (DocStore.markStarted). */
  started?: boolean;
}

const CACHE_SIZE = 1000;
/** How long a summary whose parts are running again waits before it looks again. */
const PARTS_PENDING_DELAY_MS = 1000;

export class UnitProcessor {
  private readonly parts: ProcessorParts;
  private readonly docs = new Map<string, DocEntry>();
  private readonly tasks = new Map<string, Task>();

  constructor(parts: ProcessorParts) {
    this.parts = parts;
  }

  readonly process = async (job: Job<UnitJobData, UnitJobResult, UnitJobName>, token: string | undefined, signal: AbortSignal | undefined, queueName: string): Promise<UnitJobResult> => {
    const data = job.data;
    const { store, log: rootLog } = this.parts;
    const log = rootLog.child({ docId: data.docId, unit: data.unit, job: job.id });
    const abort = signal ?? new AbortController().signal;

    let doc: DocEntry | null;
    let state: DocState | null;
    try {
      ({ doc, state } = await this.doc(data.docId, data.gen));
    } catch (caught) {
      // The record may have loaded while its task did not (its blob missing): then the failure
      // is settled like any other, with its own code.
      const record = await store.get(data.docId).catch(() => null);
      if (record && record.gen !== data.gen) return { reused: true, tokens: 0 };
      return this.onError(job, token, toDocbatchError(caught), record?.meta ?? null, log, abort, queueName);
    }
    if (!doc || doc.gen !== data.gen) {
      log.info({ gen: data.gen, current: doc?.gen ?? null }, 'unit of an old generation or a deleted document; skipped');
      return { reused: true, tokens: 0 };
    }
    let existing = await store.unitResult(data.docId, data.gen, data.unit);
    if (!existing && (state === 'written' || state === 'failed')) {
      try {
        existing = await archivedResult(this.parts.blobs, data.docId, data.gen, data.unit);
      } catch (caught) {
        // Its archive damaged or changing (ARCHIVE_*): failed or retried with that code, like any unit error.
        return this.onError(job, token, toDocbatchError(caught), doc.meta, log, abort, queueName);
      }
    }
    if (existing?.ok) {
      if (state !== 'written' && state !== 'failed') await ensureDue(this.parts.settle, doc.meta, data);
      log.debug('unit already answered; not sent again');
      return { reused: true, tokens: 0 };
    }
    if (existing && job.stalledCounter > 0) {
      // Its failure was recorded, then its worker died before BullMQ heard of it: the job came
      // back as stalled, not as a retry. The failure stands; nothing goes to the engine again.
      if (state !== 'written' && state !== 'failed') await ensureDue(this.parts.settle, doc.meta, data);
      log.info({ code: existing.code }, 'unit delivered again after a stall, its failure already recorded; not sent again');
      return { reused: true, tokens: 0 };
    }
    if (existing) {
      // A failed unit delivered again was retried by hand: its failure is reopened first.
      const record = await store.get(data.docId);
      if (record) {
        const outcome = await reopenDocument(this.parts.reopen, record, { units: [data.unit] });
        log.info({ reopened: outcome.reopened }, 'failed unit retried by hand; running it again');
      }
    }

    if (!doc.started) {
      // Best effort: a Redis that just filled up must not fail the unit for it (the settle sets
      // started_at too, later).
      doc.started = await store.markStarted(data.docId, data.gen).then(
        () => true,
        (err: unknown) => (log.debug({ err: (err as Error).message }, 'could not mark the document started'), false),
      );
    }
    // What the engine answered in this attempt; counted when the attempt ends without settling it.
    const attempt = newAttempt();
    try {
      // A summary is made from its parts as they are now: a part reopened meanwhile makes it stale.
      const reopens = data.reduce ? Number((await store.redis.hget(store.docKey(data.docId), 'reopens')) ?? 0) : undefined;
      const result = await askUntilAccepted(this.parts, data, doc, abort, log, attempt);
      attempt.settling = true;
      const outcome = await this.record(job, token, queueName, { data, meta: doc.meta, result, counted: attempt.counted, ...(reopens !== undefined ? { reopens } : {}) }, log);
      // Not recorded: the answer is discarded (and asked for again, when reopened or its lock
      // lost), but it was spent. A duplicate is another's result (a worker whose lock was lost
      // recorded its answer while this one ran): this answer's cost is counted on its own.
      if (outcome.outcome !== 'recorded') attempt.settling = false;
      if (outcome.outcome === 'reopened') throw new PartsPending('a part of the conversation was reopened while its summary was made');
      if (outcome.outcome === 'lock-lost') throw new DocbatchError('ABORTED', 'the job lock was lost before the result was recorded; result discarded');
      if (outcome.outcome === 'recorded') this.parts.onSettled?.(data, doc.meta, result);
      else {
        log.info({ outcome: outcome.outcome }, 'answer not recorded: the unit has a result already (or its document moved on); what it cost is counted');
        await this.countSpent(data, attempt, log);
      }
      if (outcome.last) log.info({ units: outcome.units }, 'last unit settled; document handed to the writer');
      return { reused: false, tokens: result.ok ? jobTokens(result) : 0 };
    } catch (caught) {
      if (caught instanceof PartsPending && token && !abort.aborted) {
        // No attempt used: the summary runs again once its parts have settled.
        log.info({ reason: caught.message }, 'summary waits for its parts');
        await this.countSpent(data, attempt, log);
        await job.moveToDelayed(Date.now() + PARTS_PENDING_DELAY_MS, token);
        throw new DelayedError();
      }
      // An error while its result was being recorded: the settle may have counted it already.
      return this.onError(job, token, toDocbatchError(caught), doc.meta, log, abort, queueName, attempt.settling ? undefined : attempt);
    }
  };

  private countSpent(data: UnitJobData, attempt: Attempt, log: Logger): Promise<void> {
    return countSpent(this.parts.store, data, attempt, log);
  }


  /**
   * A unit's error: handed back, settled as its failure (final codes, the last attempt), or
   * thrown for BullMQ to retry. Whatever reaches BullMQ reads "CODE: message", so the reconciler
   * settles a unit the worker could not (its record unreadable) with its real code.
   */
  private async onError(job: Job<UnitJobData, UnitJobResult, UnitJobName>, token: string | undefined, err: DocbatchError, meta: DocMeta | null, log: Logger, abort: AbortSignal, queueName?: string, attempt?: Attempt): Promise<never> {
    // Answers this attempt got before the error: settled with its failure below, else counted now.
    const spent = attempt && spentAny(attempt) ? attempt : null;
    if (abort.aborted || err.code === 'ABORTED') {
      if (spent) await this.countSpent(job.data, spent, log);
      // Lock lost or shutting down: someone else takes the unit over; nothing was recorded.
      log.warn({ code: 'ABORTED', reason: String(abort.reason ?? err.message) }, 'unit aborted; result discarded');
      throw err;
    }
    // ENGINE_URL naming no engine (a host with no deployment, a redirect) is this worker's fault,
    // not the unit's: handed back, intake stopped until the engine check passes again.
    const action = err instanceof FinalUnitError ? 'fail' : err instanceof EngineError && err.wrongUrl ? 'environment' : actionFor(err.code);
    if (err instanceof ReleaseUnit || action === 'environment' || action === 'wait') {
      if (action === 'environment') this.parts.onEnvironmentError(err);
      log.warn({ code: err.code, err: err.message }, 'unit handed back to the queue (no attempt used)');
      if (spent) await this.countSpent(job.data, spent, log);
      if (token) {
        await job.moveToWait(token);
        throw new WaitingError();
      }
      throw err;
    }
    const attempts = job.opts.attempts ?? 1;
    const lastAttempt = job.attemptsMade + 1 >= attempts;
    const final = action === 'fail' || action === 'shrink' || action === 'reject';
    if ((final || lastAttempt) && meta) {
      log.error({ code: err.code, err: err.message, attemptsMade: job.attemptsMade + 1 }, 'unit failed for good');
      const result: UnitResult = {
        ok: false,
        code: err.code,
        message: err.message,
        worker: this.parts.workerName,
        ...(attempt?.drawn ?? {}),
        ...(err instanceof AnswerRejected
          ? { retried: err.retried, ...err.spent.tokens, engineMs: Math.round(err.spent.engineMs) }
          : spent
            ? // Tokens only if an answer came (none: unknown, not 0; a failed chunk says "usage": null).
              { ...(spent.retried.length > 0 ? { retried: spent.retried } : {}), ...(spent.answers > 0 ? spent.spent.tokens : {}), engineMs: Math.round(spent.spent.engineMs) }
            : {}),
      };
      // Its rejected answers were counted as they came: the settle adds the rest.
      const outcome = await this.record(job, token, queueName, { data: job.data, meta, result, ...(attempt ? { counted: attempt.counted } : {}) }, log);
      if (outcome.outcome === 'lock-lost') {
        if (spent) await this.countSpent(job.data, spent, log);
        throw new DocbatchError('ABORTED', 'the job lock was lost before the failure was recorded');
      }
      if (outcome.outcome === 'recorded') this.parts.onSettled?.(job.data, meta, result);
      // Not recorded (the unit has another's result already): what this attempt spent is counted on its own.
      else if (spent) await this.countSpent(job.data, spent, log);
      throw new UnrecoverableError(`${err.code}: ${err.message}`);
    }
    if (final) {
      // Its record cannot be read here: fail the job for good, the code kept for the reconciler.
      log.error({ code: err.code, err: err.message }, 'unit failed for good; its record could not be read, so the reconciler settles it');
      if (spent) await this.countSpent(job.data, spent, log);
      throw new UnrecoverableError(`${err.code}: ${err.message}`);
    }
    log.warn({ code: err.code, err: err.message, attemptsMade: job.attemptsMade + 1, attempts }, 'unit failed; will retry');
    if (spent) await this.countSpent(job.data, spent, log);
    throw new Error(`${err.code}: ${err.message}`, { cause: err });
  }

  /**
   * Records a unit's result under its job's lock. An answer whose lock was lost before it could be
   * recorded (Redis away or full for longer than LOCK_DURATION_MS, this process stalled) is
   * recorded where no result is: first write wins, so the output stays exactly once, and the
   * worker that takes the unit next finds it answered and does not send it again. A failure is
   * not: whoever holds the unit now runs it. While Redis is full the result is held and recorded
   * once it has room (hold.ts), under the lock if the lock outlived the wait.
   */
  private record(job: Job, token: string | undefined, queueName: string | undefined, answer: Omit<SettleRequest, 'lock' | 'id'>, log: Logger): Promise<SettleOutcome> {
    const { settle } = this.parts;
    // One answer, one settle: every try below (under the lock or not, held while Redis is full)
    // carries this id, so a try after one that went through (its reply refused part-way: its
    // write job refused for want of memory) is known as recorded by it, even once the document
    // is written and its result can no longer be compared. A new id each try counted the
    // answer's engine time again then.
    const request: Omit<SettleRequest, 'lock'> = { ...answer, id: newSettleId() };
    return this.parts.hold.record(async (again) => {
      let outcome = await settleUnit(settle, { ...request, ...(queueName ? this.lock(job, token, queueName) : {}) });
      if (outcome.outcome === 'lock-lost' && request.result.ok) {
        outcome = await settleUnit(settle, request);
        log.debug({ outcome: outcome.outcome }, 'the job lock was lost before the answer was recorded; recorded where no result was (first write wins)');
      }
      // A try after one that went through is known by its id (SETTLE_LUA answers 'recorded'
      // again, even once the document is written; settleUnit then adds what it made due), as is
      // one whose reply was lost, sent again by ioredis on reconnect. A duplicate whose stored
      // result is this very one was recorded by a settle of the same answer with another id
      // (before the worker was upgraded, say): recorded, and what it made due is added here.
      if (outcome.outcome === 'duplicate') {
        const stored = await this.parts.store.redis.hget(this.parts.store.unitsKey(request.data.docId, request.data.gen), String(request.data.unit));
        const ours = stored === JSON.stringify(request.result);
        if (again || ours) await ensureDue(settle, request.meta, request.data);
        if (ours) outcome = { ...outcome, outcome: 'recorded' };
      }
      return outcome;
    });
  }

  private lock(job: Job, token: string | undefined, queueName: string): { lock?: { key: string; token: string } } {
    return token && job.id ? { lock: { key: jobLockKey(this.parts.store.prefix, queueName, job.id), token } } : {};
  }

  /** The document's record (its meta and task cached per generation) and its current state. */
  private async doc(docId: string, gen: number): Promise<{ doc: DocEntry | null; state: DocState | null }> {
    const [currentGen, state] = await this.parts.store.redis.hmget(this.parts.store.docKey(docId), 'gen', 'state');
    if (currentGen === null) {
      this.docs.delete(docId);
      return { doc: null, state: null };
    }
    const cached = this.docs.get(docId);
    if (cached && cached.gen === Number(currentGen)) return { doc: cached, state: state as DocState };
    const record = await this.parts.store.get(docId);
    if (!record) return { doc: null, state: null };
    const entry: DocEntry = { meta: record.meta, gen: record.gen, task: await this.task(record.meta.task.blob) };
    this.docs.set(docId, entry);
    if (this.docs.size > CACHE_SIZE) this.docs.delete(this.docs.keys().next().value!);
    return { doc: entry, state: record.state };
  }

  private async task(blob: string): Promise<Task> {
    let task = this.tasks.get(blob);
    if (!task) {
      task = JSON.parse((await this.parts.blobs.readAll(blob)).toString('utf8')) as Task;
      this.tasks.set(blob, task);
      if (this.tasks.size > 100) this.tasks.delete(this.tasks.keys().next().value!);
    }
    return task;
  }
}

/** A job's tokens (its BullMQ return value): null when the engine did not report them all. */
function jobTokens(counts: TokenCounts): number | null {
  return counts.promptTokens === null || counts.completionTokens === null ? null : counts.promptTokens + counts.completionTokens;
}
