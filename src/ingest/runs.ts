/**
 * A stored input × a task × a model = a run: one document record with its own id, units, queue
 * and output folder. The run's identity is the input's bytes, the task's identity and the model
 * (and, for chat exports, how they were split): the same file under another task or model is
 * another run, which neither collides with nor disturbs the first; the same file under the same
 * task and model resumes.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { inferQueueFor } from '../../queues/routes.ts';
import { InputError } from '../errors.ts';
import type { BlobStore } from '../store/blobs.ts';
import { encodeIndex, type IndexEntry } from '../store/chunk-index.ts';
import type { DocMeta } from '../store/types.ts';
import { canonicalJson, taskHash } from '../task/identity.ts';
import type { Task, TaskRef } from '../task/types.ts';
import type { PreparedInput } from './prepare.ts';

export interface RunOptions {
  /** Chat: also summarize each conversation of several chunks from its chunks' summaries. */
  conversationSummary: boolean;
  chunkTokens: number;
  chunkOverlapTokens: number;
  /** Folder under OUT_DIR ('' = OUT_DIR itself). */
  out: string;
  priority: number;
  now: string;
}

/** A run ready to register: its record's meta (its name still to be claimed). */
export interface RunPlan {
  meta: Omit<DocMeta, 'name'>;
  baseName: string;
  jobName: string;
  password?: string;
}

/** `d` + 20 hex digits of sha256(content hash ‖ run key): the same run is the same document. */
export function runId(sha256: string, key: Record<string, unknown>): string {
  return `d${createHash('sha256').update(`${sha256}\n${canonicalJson(key)}`).digest('hex').slice(0, 20)}`;
}

/** A model's output folder: its name with anything but letters, digits, `.`, `_`, `-` replaced (`/` → `--`). */
export function modelFolder(model: string): string {
  const safe = model.replace(/\//g, '--').replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[.-]+/, '');
  return (safe || 'model').slice(0, 100);
}

/**
 * Stores the task (workers load it by its blob id) and returns what the record says of it. The
 * blob keeps the task's own key order: a JSON Schema's property order is the order structured
 * output writes the fields in (and models answer better in the order the user chose); only the
 * identity hash is canonical.
 */
export async function storeTask(blobs: BlobStore, task: Task): Promise<TaskRef> {
  const blob = await blobs.putBytes(JSON.stringify(task));
  return { hash: taskHash(task), blob: blob.sha256, name: task.name, unit: task.unit, output: task.output.type };
}

export async function planRuns(input: PreparedInput, task: Task, taskRef: TaskRef, blobs: BlobStore, options: RunOptions): Promise<RunPlan[]> {
  const models: Array<string | null> = task.models.length > 0 ? task.models : [null];
  let units: number;
  let feedUnits: number;
  let index: string | undefined;
  let jobName: string;
  const key: Record<string, unknown> = { task: taskRef.hash };
  if (input.kind === 'chat') {
    const groups = options.conversationSummary || task.unit === 'conversation';
    const entries = chunkIndex(input.chunks ?? [], groups);
    feedUnits = entries.length;
    units = feedUnits + countSummaries(entries);
    index = (await blobs.putBytes(encodeIndex(entries))).sha256;
    jobName = task.unit === 'conversation' ? 'conversation' : 'chunk';
    Object.assign(key, { chunkTokens: options.chunkTokens, overlap: options.chunkOverlapTokens, summaries: groups });
  } else {
    const pages = input.pages ?? 1;
    if (task.unit === 'document') {
      if (pages > task.maxPages) {
        throw new InputError('DOC_TOO_MANY_PAGES', `the task sends whole documents and this one has ${pages} pages, more than its max_pages ${task.maxPages} (use the page unit, or raise max_pages if the model takes that many images)`, { place: { file: input.source } });
      }
      units = feedUnits = 1;
      jobName = 'document';
    } else {
      units = feedUnits = pages;
      jobName = 'page';
    }
  }
  return models.map((model) => {
    const docId = runId(input.sha256, { ...key, model });
    const meta: Omit<DocMeta, 'name'> = {
      docId,
      kind: input.kind,
      source: input.source,
      sha256: input.sha256,
      outSub: model !== null && task.models.length > 0 ? join(options.out, modelFolder(model)) : options.out,
      units,
      feedUnits,
      blob: input.blob,
      ...(index ? { index } : {}),
      ...(input.pages !== undefined ? { pages: input.pages } : {}),
      ...(input.format ? { format: input.format } : {}),
      ...(input.kind === 'chat' && options.conversationSummary && task.unit === 'chunk' ? { conversationSummary: true } : {}),
      ...(input.stats ? { stats: input.stats } : {}),
      ...(input.encrypted ? { encrypted: true } : {}),
      task: taskRef,
      model,
      queue: inferQueueFor(model),
      priority: options.priority,
      enqueuedAt: options.now,
    };
    return { meta, baseName: input.baseName, jobName, ...(input.password ? { password: input.password } : {}) };
  });
}

/**
 * The chunk index: chunks in sidecar order; with `groups`, each conversation of more than one
 * chunk gets a summary unit after all the chunks, in conversation order (the writer relies on it).
 */
export function chunkIndex(chunks: Array<{ offset: number; length: number; chunk: number; chunks: number }>, groups: boolean): IndexEntry[] {
  const entries: IndexEntry[] = [];
  let summaries = 0;
  for (let first = 0; first < chunks.length; ) {
    const count = Math.max(1, chunks[first]!.chunks);
    const reduce = groups && count > 1 ? chunks.length + summaries++ : null;
    for (let i = first; i < first + count && i < chunks.length; i++) {
      entries.push({ offset: chunks[i]!.offset, length: chunks[i]!.length, reduce, first, count });
    }
    first += count;
  }
  return entries;
}

function countSummaries(entries: IndexEntry[]): number {
  let n = 0;
  entries.forEach((e, i) => {
    if (e.reduce !== null && e.first === i) n++;
  });
  return n;
}
