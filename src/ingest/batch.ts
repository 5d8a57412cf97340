/**
 * `docbatch enqueue INPUT...` without the printing: walk the inputs (directories recursively),
 * prepare every file (a rejected file is reported and the others go on; in a directory, files
 * that are no document are skipped and listed), resolve the task for each kind of input, plan one
 * run per model, enqueue each run, and fill the queues' wait lists. Used by the CLI, the demo and
 * the tests. Inputs may be `s3://bucket/prefix/` (listed and streamed: src/ingest/s3-input.ts);
 * a BLOB_DIR on s3:// that cannot be used stops the command before any file (STORAGE_UNREACHABLE).
 */
import { isRedisConnectionError } from '../../queues/redis-link.ts';
import type { Config } from '../config.ts';
import { DocbatchError, InputError, toDocbatchError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import { checkLocations, ownFolders } from '../store/locations.ts';
import type { DocKind } from '../store/types.ts';
import { resolveTask, type TaskSpec } from '../task/load.ts';
import type { Task, TaskRef } from '../task/types.ts';
import { openClientParts } from './client-parts.ts';
import { Producer, type EnqueueReport, type OutputsView } from './enqueue.ts';
import { PdfInspector } from './pdf.ts';
import { clashingNames } from './clashes.ts';
import { prepareFile, type PreparedInput } from './prepare.ts';
import { fileRejection } from './rejection.ts';
import { planRuns, storeTask, type RunPlan } from './runs.ts';
import { walkInputs, type WalkedFile } from './walk.ts';

export interface RunReport extends EnqueueReport {
  kind: DocKind;
  task: string;
  /** The task's unit (page, document, chunk, conversation). */
  unit: string;
}

export interface FileOutcome {
  file: string;
  /** The runs (one per model) when the file went in (or was already there). */
  runs?: RunReport[];
  /** Set when the file was rejected (with `runs` too when some of its runs went in before one was refused). */
  error?: DocbatchError;
  /** Set when a file found in a directory is no document (skipped, not an error). */
  skipped?: string;
}

export interface EnqueueFilesOptions {
  password?: string;
  /** Chat exports: add a summary per conversation made from its chunks' summaries. */
  conversationSummary?: boolean;
  force?: boolean;
  /** Folder under OUT_DIR for the outputs ('' or absent: OUT_DIR itself). Checked by the caller. */
  out?: string;
  /** What to ask (default: transcribe PDFs and images, summarize exports). */
  task?: TaskSpec;
  /** Feeding priority (higher first). @defaultValue 0 */
  priority?: number;
  /** Only files under the given directories whose relative path matches. */
  glob?: string;
  signal?: AbortSignal;
  /** Called as each file is decided, so the CLI can print lines as they come. */
  onOutcome?: (outcome: FileOutcome) => void;
  /**
   * Where a written document's outputs are checked when it is enqueued again: OUT_DIR's sink
   * (src/write/sinks.ts openSink; the CLI passes it). Without it a written document is `done`.
   */
  outputs?: OutputsView;
  /** The PDF inspector to use (the caller's, left open); one of its own, closed at the end, otherwise. */
  inspector?: PdfInspector;
}

/** Codes that, for a file found in a directory (not named), mean "not a document": skipped. */
/**
 * In a folder, files with these codes are listed as skipped, not errors: a folder holds other
 * things. A file that could not be read (FILE_UNREADABLE: no permission, an object the store would
 * not give) is an error: it may well be a document.
 */
const NOT_A_DOCUMENT = new Set(['UNSUPPORTED_FORMAT', 'EMPTY_FILE', 'ZIP_NO_CONVERSATIONS', 'ZIP_CORRUPT']);

/** A damaged .zip is skipped only when its name says it is something else (a .docx, an .xlsx): one named .zip may be a half-downloaded export. */
function skippable(code: string, file: string): boolean {
  return NOT_A_DOCUMENT.has(code) && !(code === 'ZIP_CORRUPT' && /\.zip$/i.test(file));
}

/** BLOB_STORE_UNWRITABLE met at `file`: the same, saying where enqueue stopped and what is in. */
function storeStopped(problem: DocbatchError, file: string, outcomes: FileOutcome[]): DocbatchError {
  const done = outcomes.filter((o) => o.runs !== undefined && o.error === undefined).length;
  const before = done === 0 ? 'no file went in' : `the ${done === 1 ? 'file' : `${done} files`} before it went in`;
  return new DocbatchError(problem.code, `${problem.message}. enqueue stopped at ${file} (${before}): run the same enqueue again once fixed; what went in is not enqueued twice`, { cause: problem.cause ?? problem });
}

export async function enqueueFiles(inputs: string[], config: Config, log: Logger, options: EnqueueFilesOptions = {}): Promise<FileOutcome[]> {
  // Refused before anything is opened, read or written (src/store/locations.ts).
  checkLocations(config);
  // Every blob stored or found here is pinned first, so gc leaves it alone until a record names it.
  const parts = openClientParts(config, { pinBlobs: true });
  const { store, blobs, feeder, s3 } = parts;
  const inspector = options.inspector ?? new PdfInspector();
  const outcomes: FileOutcome[] = [];
  const emit = (o: FileOutcome) => {
    outcomes.push(o);
    options.onOutcome?.(o);
  };
  try {
    await parts.ping();
    if (blobs.remote) {
      try {
        await blobs.markStore();
      } catch (err) {
        throw new DocbatchError('STORAGE_UNREACHABLE', `enqueue: ${(err as Error).message}`, { cause: err });
      }
    }
    const now = new Date().toISOString();
    const tasks = new Map<DocKind, { task: Task; ref: TaskRef } | { mismatch: string }>();
    const taskFiles = new Map<string, Task>();
    const taskFor = async (kind: DocKind) => {
      let entry = tasks.get(kind);
      if (!entry) {
        const resolved = resolveTask(options.task ?? {}, kind, taskFiles);
        entry = 'mismatch' in resolved ? resolved : { task: resolved, ref: await storeTask(blobs, resolved) };
        tasks.set(kind, entry);
      } else if ('task' in entry) {
        // Stored again for each file (found: one look-up), so its pin is as fresh as the file's.
        await storeTask(blobs, entry.task);
      }
      return entry;
    };
    // Tasks are checked before any file is read: a bad task file stops the command (exit 2).
    if (options.task?.task !== undefined || options.task?.prompt !== undefined || options.task?.schema !== undefined) {
      for (const kind of ['pdf', 'chat'] as const) resolveTask(options.task, kind, taskFiles);
    }

    // The inputs first (names only): base names that occur more than once in this command all get
    // the hash suffix, so two different files never race for a name. Then each file goes all the
    // way in before the next is read, and its units are fed at once: workers start on the first
    // document while the producer is still reading the others.
    const walked: WalkedFile[] = [];
    for await (const w of walkInputs(inputs, { s3, own: ownFolders(config), ...(options.glob ? { glob: options.glob } : {}), ...(options.signal ? { signal: options.signal } : {}) })) walked.push(w);
    const clashing = await clashingNames(walked.filter((w) => w.passed === undefined && w.unreadable === undefined && w.own === undefined));
    // Names claimed by a version that did not fold case are folded now, before any claim; two
    // documents already holding one name in two cases are said (they write one file there).
    for (const clash of await store.foldLegacyNames()) {
      log.warn({ name: clash.field, docId: clash.docId, other: clash.holder }, 'two documents hold output names that differ only by case (claimed by an older docbatch): on a case-insensitive filesystem they write the same files; enqueue one again with --force or another --out');
    }
    const producer = new Producer({ ...parts, log, ...(options.outputs ? { outputs: options.outputs } : {}) });
    const touched = new Set<string>();
    let lastFeed = 0;
    // A head start only: workers top their wait lists up from the fair round themselves. So a
    // Redis that does not answer now fails no document already registered (the next one's
    // registration says so if it is still away).
    const feed = async (force: boolean) => {
      if (!force && performance.now() - lastFeed < 200) return;
      lastFeed = performance.now();
      try {
        for (const queue of touched) await feeder.topUp(queue, config.feedDepth);
      } catch (err) {
        if (!isRedisConnectionError(err)) throw err;
        log.debug({ err: (err as Error).message }, 'could not top up the wait lists now; the workers will');
      }
    };
    for (const { path: file, explicit, passed, unreadable, own } of walked) {
      options.signal?.throwIfAborted();
      if (passed !== undefined) {
        emit({ file, skipped: passed });
        continue;
      }
      if (unreadable !== undefined) {
        emit({ file, error: new InputError('FILE_UNREADABLE', unreadable, { place: { file } }) });
        continue;
      }
      if (own !== undefined) {
        emit({ file, error: new InputError('INPUT_OWN_FOLDER', own, { place: { file } }) });
        continue;
      }
      let input: PreparedInput;
      let plans: RunPlan[];
      let task: Task;
      try {
        input = await prepareFile(file, blobs, {
          inspector,
          ...(options.password ? { password: options.password } : {}),
          chunkTokens: config.chunkTokens,
          chunkOverlapTokens: config.chunkOverlapTokens,
          limits: { maxPages: config.inputMaxPages, maxChunks: config.exportMaxChunks, maxZipRatio: config.zipMaxRatio, maxZipBytes: config.zipMaxBytes },
          s3,
          ...(options.signal ? { signal: options.signal } : {}),
        });
        const entry = await taskFor(input.kind);
        if ('mismatch' in entry) throw new InputError('TASK_UNIT_MISMATCH', entry.mismatch, { place: { file } });
        task = entry.task;
        plans = await planRuns(input, entry.task, entry.ref, blobs, {
          conversationSummary: options.conversationSummary === true,
          chunkTokens: config.chunkTokens,
          chunkOverlapTokens: config.chunkOverlapTokens,
          out: options.out ?? '',
          priority: options.priority ?? 0,
          now,
        });
        delete input.chunks; // the index blob holds them now
      } catch (caught) {
        // The blob store's folder full, read-only or not ours to write stops the command, saying
        // so (not this file's FILE_UNREADABLE, not an unexpected ENOSPC): every later file would
        // meet it. What the file left in the store's temporaries is gone already.
        const unwritable = blobs.writeProblem(caught);
        if (unwritable) throw storeStopped(unwritable, file, outcomes);
        // A docbatch bug met on this file rejects this file (INPUT_INTERNAL); an interrupt, Redis
        // stop the command (rejection.ts).
        const err = fileRejection(caught, file, options.signal);
        if (!err) throw caught;
        if (err.code === 'INPUT_INTERNAL') log.error({ file, err: caught }, 'unexpected error while reading a file (a docbatch bug: please report it); the file is rejected, the others go on');
        // Found in a folder and gone by the time it was read (an editor's swap file, a lock file):
        // listed, not an error.
        const vanished = !explicit && err.code === 'FILE_UNREADABLE' && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
        if (!explicit && (skippable(err.code, file) || vanished)) {
          log.debug({ file, code: err.code }, 'not a document; skipped');
          emit({ file, skipped: err.message });
        } else {
          log.debug({ file, code: err.code }, 'file rejected');
          emit({ file, error: err });
        }
        continue;
      }
      const runs: RunReport[] = [];
      try {
        const siblings = plans.map((p) => p.meta.docId);
        for (const plan of plans) {
          if (siblings.length > 1) plan.meta.siblings = siblings;
          const report = await producer.enqueue(plan, { force: options.force ?? false, clashing: clashing.has(plan.baseName) });
          runs.push({ ...report, kind: input.kind, task: task.name, unit: task.unit });
          touched.add(plan.meta.queue);
        }
        emit({ file: input.source, runs });
      } catch (err) {
        // One run of several (one per model) refused: those already in are said too.
        if (err instanceof InputError) emit({ file: input.source, ...(runs.length > 0 ? { runs } : {}), error: err });
        else throw toDocbatchError(err);
      }
      await feed(false);
    }
    await feed(true);
    return outcomes;
  } finally {
    await Promise.allSettled([parts.close(), options.inspector ? undefined : inspector.close()]);
  }
}
