/**
 * Runs → Redis: register each run's document record and put it in its queue's feeding round
 * (src/store/feed.ts), which moves its units into BullMQ as workers need them. Safe to run again
 * on the same files: the same run is the same document, settled units are never sent again, and
 * a producer killed half-way leaves nothing a rerun does not complete.
 *
 * A written document enqueued again is `done` while its outputs are there, as OUT_DIR's sink
 * sees them from here (`outputs`; s3:// outputs through S3), and also when they cannot be checked
 * from here (outputs on another machine's disk, no sink given): the record's `written` is
 * trusted. Only outputs found missing write it again, from its archive, as it was: its failed
 * units are not run again (that is `docbatch retry`).
 */
import type { TypedQueue } from '../../queues/connect.ts';
import { ensureWriteJob } from '../../queues/schedule.ts';
import { DocbatchError, InputError, rejectionOf } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import type { DocStore } from '../store/docs.ts';
import type { Feeder } from '../store/feed.ts';
import { moveAndRewrite, reopenDocument, type ReopenParts } from '../store/reopen.ts';
import type { DocMeta, DocRecord } from '../store/types.ts';
import type { RunPlan } from './runs.ts';

export type EnqueueOutcome =
  /** New document, or a new generation (--force): every unit queued. */
  | 'enqueued'
  /** Known document, unfinished: its units without a result go back in the round. */
  | 'resumed'
  /** Known document whose outputs exist: nothing to do. */
  | 'done'
  /** Every unit had a result but the outputs are missing, or their write failed: written again. */
  | 'rewrite';

export interface EnqueueReport {
  docId: string;
  gen: number;
  outcome: EnqueueOutcome;
  name: string;
  units: number;
  /** Units that already had a result. */
  settled: number;
  /** The run's model (null: whatever the engine serves), and its infer queue. */
  model: string | null;
  queue: string;
}

/** What tells whether outputs are still there (OUT_DIR's OutputSink, src/write/sinks.ts, is one). */
export interface OutputsView {
  /** true: all there; false: one is missing; null: cannot be told from here. */
  outputsPresent(locations: string[]): Promise<boolean | null>;
}

export interface ProducerParts extends ReopenParts {
  log: Logger;
  /** Where written documents' outputs are checked; without it they are never checked (`written` is trusted). */
  outputs?: OutputsView;
}

export class Producer {
  private readonly parts: ProducerParts;

  constructor(parts: ProducerParts) {
    this.parts = parts;
  }

  private get store(): DocStore {
    return this.parts.store;
  }
  private get feeder(): Feeder {
    return this.parts.feeder;
  }
  private get write(): TypedQueue<'write'> {
    return this.parts.writeQueue;
  }

  async enqueue(plan: RunPlan, options: { force: boolean; clashing?: boolean }): Promise<EnqueueReport> {
    const { meta } = plan;
    const existing = await this.store.get(meta.docId);
    const now = meta.enqueuedAt;

    if (existing && !options.force) {
      if (existing.units !== meta.units || existing.meta.blob !== meta.blob) {
        // Finished under what it was read into then: nothing to redo (a daily `enqueue exports/`
        // goes on working across an upgrade that reads exports differently).
        if (existing.state === 'written' && existing.meta.outSub === meta.outSub && (await this.outputsPresent(existing)) !== false) return report(existing, 'done', existing.units);
        const finished = existing.state === 'written' || existing.state === 'failed';
        // An unfinished chat run goes on as it was registered (its sidecar and index define every
        // unit), which is what letting it finish means: a daily `enqueue exports/` across such an
        // upgrade does not fail on it. Only when that input is gone is there nothing to go on with.
        // (A PDF's units are pages of its bytes, read now into another count: that stays a conflict.)
        const goesOn = !finished && meta.kind === 'chat';
        if (goesOn && (await this.inputsKept(existing))) return this.goOn(existing, meta, plan);
        // A chat run's id already holds its content and every chunk setting: the same id with
        // other chunks is the export read or cut differently (a docbatch upgrade), not "other settings".
        const why =
          meta.kind === 'chat'
            ? `and it reads into other chunks now (${existing.units} units, now ${meta.units}: a docbatch upgrade changed how chat exports are read or cut)`
            : `with other settings (${existing.units} units, now ${meta.units})`;
        const then = finished ? 'redo it with --force' : goesOn ? 'the input it was read from then is gone from the blob store: redo it with --force' : 'let it finish, or redo it with --force';
        throw new InputError('DOC_CONFLICT', `this content was enqueued before as ${meta.docId} ${why}; ${then}`, { place: { file: meta.source } });
      }
      if (existing.state === 'written' || existing.state === 'failed' || existing.state === 'complete') {
        // Asked for in another --out folder: written again there from its results (a document
        // whose write is pending, `complete`, is written where it was going).
        const moving = existing.state !== 'complete' && existing.meta.outSub !== meta.outSub;
        if (!moving && existing.state === 'written' && (await this.outputsPresent(existing)) !== false) return report(existing, 'done', existing.units);
        if (existing.state === 'complete') {
          await ensureWriteJob(this.write, meta.docId, existing.gen);
          return report(existing, 'rewrite', existing.units);
        }
        if (moving) return report(await this.ofThisFile(meta, () => this.moveOutputs(existing, meta, plan, options.clashing === true)), 'rewrite', existing.units);
        // Written again as it was: failed units stay failed (`docbatch retry` runs them again).
        await this.ofThisFile(meta, () => reopenDocument(this.parts, existing, { rewrite: true, keepFailures: true }));
        return report(existing, 'rewrite', existing.units);
      }
      const name = await this.nameFor(meta, plan, existing, options.clashing === true);
      const record = await this.store.register({ ...meta, name }, { reset: false, now, jobName: plan.jobName, ...(plan.password ? { password: plan.password } : {}) });
      const settled = (await this.store.settledUnits(meta.docId, record.gen)).size;
      await this.finishEnqueuing(record);
      await this.feeder.add(meta.docId, meta.queue, true);
      return report(record, 'resumed', settled);
    }

    const name = await this.nameFor(meta, plan, existing, options.clashing === true);
    const full: DocMeta = { ...meta, name };
    const record = await this.store.register(full, { reset: options.force || existing !== null, now, jobName: plan.jobName, ...(plan.password ? { password: plan.password } : {}) });
    await this.finishEnqueuing(record);
    await this.feeder.add(meta.docId, meta.queue, true);
    this.parts.log.debug({ docId: meta.docId, units: meta.units, queue: meta.queue }, 'document registered');
    return report(record, 'enqueued', 0);
  }

  /** Whether the blobs a chat record's units are read from (its sidecar and index) are stored. */
  private async inputsKept(record: DocRecord): Promise<boolean> {
    for (const blob of [record.meta.blob, record.meta.index]) if (blob !== undefined && !(await this.parts.blobs.has(blob))) return false;
    return true;
  }

  /**
   * An unfinished document enqueued again whose content now reads into other units than its
   * record holds (an upgrade reads or cuts it differently): it goes on with the record's units
   * and input, untouched but for its priority (this enqueue's `--priority`, as a resume takes
   * it); `--force` reads it anew.
   */
  private async goOn(existing: DocRecord, meta: Omit<DocMeta, 'name'>, plan: RunPlan): Promise<EnqueueReport> {
    this.parts.log.info(
      { docId: existing.docId, units: existing.units, now: meta.units, file: meta.source },
      'enqueued before and not finished: it goes on as it was read then (this docbatch reads it into other units; --force reads it anew)',
    );
    if (existing.state === 'complete') {
      await ensureWriteJob(this.write, existing.docId, existing.gen);
      return report(existing, 'rewrite', existing.units);
    }
    const record =
      existing.meta.priority === meta.priority
        ? existing
        : await this.store.register({ ...existing.meta, priority: meta.priority }, { reset: false, now: meta.enqueuedAt, jobName: plan.jobName });
    const settled = (await this.store.settledUnits(record.docId, record.gen)).size;
    await this.finishEnqueuing(record);
    await this.feeder.add(record.docId, record.meta.queue, true);
    return report(record, 'resumed', settled);
  }

  /**
   * A finished document written again, from its results, into the folder `meta` asks for, under
   * a name claimed there (failed units stay failed; nothing goes to the engine again).
   */
  private async moveOutputs(existing: DocRecord, meta: Omit<DocMeta, 'name'>, plan: RunPlan, clashing: boolean): Promise<DocRecord> {
    const { name, fresh } = await this.store.claim(meta.outSub, this.wantedName(meta, plan.baseName, clashing), meta.docId, meta.sha256);
    // This enqueue's statistics (pages, title) and sibling runs too: a written record keeps neither.
    const moved: DocMeta = {
      ...existing.meta,
      outSub: meta.outSub,
      name,
      ...(meta.stats ? { stats: meta.stats } : {}),
      ...(meta.siblings ? { siblings: meta.siblings } : {}),
    };
    let done = false;
    try {
      done = await moveAndRewrite(this.parts, existing, moved);
    } finally {
      // A move that did not happen gives back a name it took: other documents may want it.
      if (!done && fresh) {
        await this.store.releaseName(meta.outSub, name, meta.docId).catch((err: unknown) => {
          this.parts.log.warn({ docId: meta.docId, name: `${meta.outSub}/${name}`, err: (err as Error).message }, 'could not give back the name claimed for a move that did not happen; it stays held until the record expires');
        });
      }
    }
    if (!done) {
      throw new InputError('DOC_CONFLICT', `${existing.docId} changed while it was being enqueued again (another enqueue or retry of it?); enqueue it again`, { place: { file: meta.source } });
    }
    return { ...existing, meta: moved };
  }

  /**
   * Runs a step that writes a finished document again from its results. Results that are gone
   * (BLOB_MISSING: the archive collected) reject this file, naming it, and the command goes on
   * with the others.
   */
  private async ofThisFile<T>(meta: Omit<DocMeta, 'name'>, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      if (err instanceof DocbatchError && !(err instanceof InputError) && err.code === 'BLOB_MISSING') {
        throw rejectionOf(err, meta.source);
      }
      throw err;
    }
  }

  /** Whether a written document's outputs are there (null: cannot be told from here). */
  private async outputsPresent(record: DocRecord): Promise<boolean | null> {
    const outputs = this.parts.outputs;
    const present = outputs ? await outputs.outputsPresent(record.files).catch(() => null) : null;
    if (present === null) this.parts.log.debug({ docId: record.docId, files: record.files }, 'outputs cannot be checked from here; the document is written');
    return present;
  }

  /**
   * The document's name in its output folder: the one it has when the folder is the same, else
   * claimed there (the same content enqueued again with another --out: the name it had may be
   * another document's in the new folder). Its claim in the old folder stays, with the outputs
   * it wrote there.
   */
  private async nameFor(meta: Omit<DocMeta, 'name'>, plan: RunPlan, existing: DocRecord | null, clashing: boolean): Promise<string> {
    if (existing && existing.meta.outSub === meta.outSub) return existing.meta.name;
    return this.claimName(meta, plan.baseName, clashing);
  }

  /** Claims the output name in its folder; names shared within one command all get the hash suffix. */
  private async claimName(meta: Omit<DocMeta, 'name'>, baseName: string, clashing: boolean): Promise<string> {
    return this.store.claimName(meta.outSub, this.wantedName(meta, baseName, clashing), meta.docId, meta.sha256);
  }

  /** The name asked for: names shared within one command all get the hash suffix. */
  private wantedName(meta: Omit<DocMeta, 'name'>, baseName: string, clashing: boolean): string {
    return clashing ? `${baseName}-${meta.sha256.slice(0, 8)}` : baseName;
  }

  /** enqueuing → running (or complete, when every unit already settled: its write job is added). */
  private async finishEnqueuing(record: DocRecord): Promise<void> {
    const state = await this.store.redis.eval(
      `if redis.call('HGET', KEYS[1], 'state') ~= 'enqueuing' then return redis.call('HGET', KEYS[1], 'state') end
       if redis.call('HLEN', KEYS[2]) >= tonumber(redis.call('HGET', KEYS[1], 'units')) then
         redis.call('HSET', KEYS[1], 'state', 'complete') return 'complete' end
       redis.call('HSET', KEYS[1], 'state', 'running') return 'running'`,
      2,
      this.store.docKey(record.docId),
      this.store.unitsKey(record.docId, record.gen),
    );
    if (state === 'complete') await ensureWriteJob(this.write, record.docId, record.gen);
  }
}

function report(record: DocRecord, outcome: EnqueueOutcome, settled: number): EnqueueReport {
  return { docId: record.docId, gen: record.gen, outcome, name: record.meta.name, units: record.units, settled, model: record.meta.model ?? null, queue: record.meta.queue };
}

