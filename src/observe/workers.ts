/**
 * What the workers say about themselves: their heartbeats in `{p}:workers` (refreshed every 5 s
 * and on pause and resume, src/infer/worker.ts), read for `docbatch status` and the dashboard,
 * with what is wrong with each in words: its engine down, unhealthy (a fault of its own
 * environment), intake paused (budget), or silent (no heartbeat for 20 s: stopped, or cut off
 * from Redis). Writers beat too, in `{p}:writers` (src/write/writer.ts).
 */
import type { Redis } from 'ioredis';
import { openQueue, queueMetaKey } from '../../queues/connect.ts';
import { QUEUES } from '../../queues/contracts.ts';
import { inferQueueFor, SHARED_INFER_QUEUE } from '../../queues/routes.ts';
import { printable } from '../printable.ts';
import type { DocProgress } from './progress.ts';
import { readWriteRetries, writeFailingLine } from './write-retries.ts';

export interface WorkerBeat {
  name: string;
  /** When the heartbeat was written (ms since the epoch). */
  at: number;
  engine: string;
  model: string | null;
  engineDown: boolean;
  /** With fallback engines: the engine units go to now (a fallback while the primary is down), null while none may be used. */
  sendingTo?: string | null;
  /** With fallback engines: each, and whether it is seen down. */
  fallbacks?: Array<{ engine: string; down: boolean }>;
  paused: string[];
  unhealthy: { code: string; message: string } | null;
  window: number;
  inFlight: number;
  active: number;
  queues: string[];
  /** When the worker started (heartbeats from before issue 14 lack it). */
  startedAt?: number;
  /** Units this worker settled since it started, by kind (pages, documents, chunks, conversations, summaries). */
  settled?: Record<string, number>;
  /** Milliseconds since the heartbeat. */
  ageMs: number;
  /** No heartbeat for SILENT_MS. */
  silent: boolean;
}

/** A worker with no heartbeat for this long is silent (heartbeats come every 5 s). */
export const SILENT_MS = 20_000;

/**
 * The heartbeats in hash `key` (name → JSON), each made whole by `build` from what it holds and
 * when it was written (`at`, 0 if missing); beats that are not JSON are left out. By name.
 */
async function readBeats<T extends { name: string }, B>(redis: Redis, key: string, build: (name: string, beat: Partial<B>, at: number) => T): Promise<T[]> {
  const out: T[] = [];
  for (const [name, json] of Object.entries(await redis.hgetall(key))) {
    let beat: Partial<B> & { at?: unknown };
    try {
      beat = JSON.parse(json) as Partial<B> & { at?: unknown };
    } catch {
      continue;
    }
    out.push(build(name, beat, typeof beat.at === 'number' ? beat.at : 0));
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export async function readWorkers(redis: Redis, prefix: string, now = Date.now()): Promise<WorkerBeat[]> {
  return readBeats<WorkerBeat, WorkerBeat>(redis, `${prefix}:workers`, (name, beat, at) => ({
    name,
    at,
    engine: String(beat.engine ?? ''),
    model: beat.model ?? null,
    engineDown: beat.engineDown === true,
    ...(beat.sendingTo !== undefined ? { sendingTo: typeof beat.sendingTo === 'string' ? beat.sendingTo : null } : {}),
    ...(Array.isArray(beat.fallbacks) ? { fallbacks: beat.fallbacks.map((f) => ({ engine: String(f?.engine ?? ''), down: f?.down === true })) } : {}),
    paused: Array.isArray(beat.paused) ? beat.paused.map(String) : [],
    unhealthy: beat.unhealthy ?? null,
    window: Number(beat.window ?? 0),
    inFlight: Number(beat.inFlight ?? 0),
    active: Number(beat.active ?? 0),
    queues: Array.isArray(beat.queues) ? beat.queues.map(String) : [],
    ...(typeof beat.startedAt === 'number' ? { startedAt: beat.startedAt } : {}),
    ...(beat.settled && typeof beat.settled === 'object' ? { settled: beat.settled } : {}),
    ageMs: Math.max(0, now - at),
    silent: now - at > SILENT_MS,
  }));
}

/** A writer's heartbeat in `{p}:writers` (src/write/writer.ts, every 5 s; gone when it stops). */
export interface WriterBeat {
  name: string;
  at: number;
  startedAt: number | null;
  /** OUT_DIR it writes to. */
  out: string;
  /** Documents written, and writes failed for good, since it started. */
  written: number;
  failed: number;
  /** Redis refused its writes for want of memory (it pauses writing). */
  redisFull: boolean;
  ageMs: number;
  silent: boolean;
}

export async function readWriters(redis: Redis, prefix: string, now = Date.now()): Promise<WriterBeat[]> {
  return readBeats<WriterBeat, WriterBeat>(redis, `${prefix}:writers`, (name, beat, at) => ({
    name,
    at,
    startedAt: typeof beat.startedAt === 'number' ? beat.startedAt : null,
    out: String(beat.out ?? ''),
    written: Number(beat.written ?? 0),
    failed: Number(beat.failed ?? 0),
    redisFull: beat.redisFull === true,
    ageMs: Math.max(0, now - at),
    silent: now - at > SILENT_MS,
  }));
}

/** What is wrong with a writer, in words, or null when it is writing. */
export function writerProblem(w: WriterBeat): string | null {
  if (w.silent) return `no heartbeat for ${Math.round(w.ageMs / 1000)} s (stopped, or cut off from Redis)`;
  if (w.redisFull) return 'writing paused: Redis is full (REDIS_FULL)';
  return null;
}

/** What is wrong with a worker, in words, or null when it is taking work. */
export function workerProblem(w: WorkerBeat): string | null {
  if (w.silent) return `no heartbeat for ${Math.round(w.ageMs / 1000)} s (stopped, or cut off from Redis)`;
  // A fallback that took over from the down primary takes the work: nothing is wrong with intake.
  if (w.engineDown && !w.sendingTo) return `its engine ${w.engine} is down: its units wait for it (no attempt used), or go to other workers`;
  if (w.unhealthy) return `unhealthy, takes no work: ${w.unhealthy.code}: ${w.unhealthy.message}`;
  if (w.paused.includes('closing')) return `stopping: takes no new units, finishing the ${w.active} it holds`;
  if (w.paused.includes('budget')) return 'intake paused: BUDGET_USD is spent';
  if (w.paused.length > 0) return `intake paused (${w.paused.join(', ')})`;
  return null;
}

/**
 * What to know of a worker that takes work, or null: it sends to a fallback while its engine is
 * down (a paid endpoint, perhaps), or a fallback of it is down (it will not be there when needed).
 */
export function workerNote(w: WorkerBeat): string | null {
  if (w.silent || workerProblem(w) !== null) return null;
  if (w.engineDown && w.sendingTo) return `its engine ${w.engine} is down: its fallback ${w.sendingTo} takes its units`;
  const down = (w.fallbacks ?? []).filter((f) => f.down).map((f) => f.engine);
  if (down.length > 0) return `takes work; its fallback${down.length === 1 ? '' : 's'} ${down.join(', ')} ${down.length === 1 ? 'is' : 'are'} down`;
  return null;
}

/** Units settled since start, all kinds, and per second since start (null without a start time). */
export function lifetimeRate(w: WorkerBeat): { units: number; perSecond: number | null } {
  const units = Object.values(w.settled ?? {}).reduce((a, b) => a + b, 0);
  const since = w.startedAt;
  const seconds = since !== undefined ? Math.max(1, (w.at - since) / 1000) : null;
  return { units, perSecond: seconds !== null ? units / seconds : null };
}

/**
 * Work that no running worker takes, in words (empty when every unfinished document's queue has
 * one): no heartbeat at all under this prefix, or a model no worker's engine serves (a typo in
 * `--model`, its worker not started); with `writers`, also documents no running writer will
 * write. Such work waits for ever; `enqueue --wait`, `retry --wait` and `status` say so instead
 * of counting nothing.
 */
export function unservedWork(progress: readonly DocProgress[], workers: readonly WorkerBeat[], more: { writers?: readonly WriterBeat[]; pausedQueues?: readonly string[] } = {}): string[] {
  const paused = more.pausedQueues ?? [];
  return [...pausedWork(progress, paused), ...untaken(progress.filter((p) => !paused.includes(queueOf(p))), workers), ...(more.writers ? unwrittenWork(progress, more.writers, paused) : [])];
}

function queueOf(p: DocProgress): string {
  return p.record.meta.queue ?? inferQueueFor(p.record.meta.model);
}

/**
 * The queues of these documents (and the write queue) that are paused: Bull Board's Pause (or
 * BullMQ's queue.pause()) stops every worker of the queue, and no heartbeat shows it.
 */
export async function readPausedQueues(redis: Redis, prefix: string, progress: readonly DocProgress[]): Promise<string[]> {
  return pausedQueues(redis, prefix, [...new Set([...progress.filter((p) => !p.finished).map(queueOf), QUEUES.write])]);
}

/** Which of `queues` are paused (their meta's `paused`: Bull Board's Pause, queue.pause()). */
export async function pausedQueues(redis: Redis, prefix: string, queues: readonly string[]): Promise<string[]> {
  const flags = await Promise.all(queues.map((q) => redis.hexists(queueMetaKey(prefix, q), 'paused')));
  return queues.filter((_, i) => flags[i] === 1);
}

/** Work of paused infer queues (unservedWork). */
export function pausedWork(progress: readonly DocProgress[], paused: readonly string[]): string[] {
  const docs = new Map<string, number>();
  for (const p of progress) {
    if (p.finished || p.record.state === 'complete' || !paused.includes(queueOf(p))) continue;
    docs.set(queueOf(p), (docs.get(queueOf(p)) ?? 0) + 1);
  }
  return [...docs].map(([queue, n]) => `queue ${JSON.stringify(printable(queue))} is paused (${n} document${n === 1 ? '' : 's'}): no worker takes its work until it is resumed (Bull Board's Resume, or queue.resume())`);
}

/** Units no running worker takes (unservedWork). */
function untaken(progress: readonly DocProgress[], workers: readonly WorkerBeat[]): string[] {
  // Units still to answer: a `complete` document (every unit answered) waits for the writer.
  const waiting = progress.filter((p) => !p.finished && p.record.state !== 'complete');
  if (waiting.length === 0) return [];
  const live = workers.filter((w) => !w.silent);
  if (live.length === 0) {
    return [`no worker has a heartbeat under this prefix (${workers.length > 0 ? `${workers.length} silent` : 'none started'}): nothing takes this work; start one (docbatch worker), or check that workers reach this Redis and prefix`];
  }
  // Each document's own queue (meta.queue, as routed when it was enqueued): the shared queue is
  // not every worker's (a text-only worker takes only its model's queue).
  const models = new Map<string, number>();
  let shared = 0;
  // Served only by workers that take nothing now (budget spent, engine down with no fallback
  // serving, unhealthy, paused): status lists those workers, but the work they hold up was not said.
  const held = new Map<string, { model: string | null; docs: number; workers: WorkerBeat[] }>();
  for (const p of waiting) {
    const queue = p.record.meta.queue ?? inferQueueFor(p.record.meta.model);
    const serving = live.filter((w) => w.queues.includes(queue));
    if (serving.length > 0 && serving.every((w) => workerProblem(w) !== null)) {
      const entry = held.get(queue) ?? { model: queue === SHARED_INFER_QUEUE ? null : (p.record.meta.model ?? null), docs: 0, workers: serving };
      entry.docs++;
      held.set(queue, entry);
      continue;
    }
    if (serving.length > 0) continue;
    const model = p.record.meta.model;
    if (queue === SHARED_INFER_QUEUE || model === null || model === undefined) shared++;
    else models.set(model, (models.get(model) ?? 0) + 1);
  }
  const served = [...new Set(live.map((w) => w.model).filter((m): m is string => m !== null))];
  const notes = [...models].map(
    ([model, docs]) =>
      `model ${JSON.stringify(printable(model))} (${docs} document${docs === 1 ? '' : 's'}): no running worker serves it, so its work waits; start a worker whose engine serves it${served.length > 0 ? ` (running workers serve ${served.map((m) => JSON.stringify(printable(m))).join(', ')})` : ''}`,
  );
  if (shared > 0) {
    notes.push(
      `no running worker takes work that names no model (${shared} document${shared === 1 ? '' : 's'}, the shared queue): the running workers are text-only; start a worker whose model takes images, or enqueue with --model naming a model a worker serves${served.length > 0 ? ` (${served.map((m) => JSON.stringify(printable(m))).join(', ')})` : ''}`,
    );
  }
  for (const { model, docs, workers: serving } of held.values()) {
    const what = model === null ? 'work that names no model' : `model ${JSON.stringify(printable(model))}`;
    const why = serving.map((w) => `worker ${printable(w.name)}: ${printable(workerProblem(w)!)}`).join('; ');
    notes.push(`${what} (${docs} document${docs === 1 ? '' : 's'}): no worker that serves it takes work now, so its work waits (${why})`);
  }
  return notes;
}

/**
 * Documents that wait (or will wait) for a writer while no writer runs: the writer writes the
 * outputs, and runs the reconciler and the feeding timer. Before writers had heartbeats nothing
 * said so: `--wait` showed every unit answered and waited for ever.
 */
export function unwrittenWork(progress: readonly DocProgress[], writers: readonly WriterBeat[], pausedQueues: readonly string[] = []): string[] {
  const unfinished = progress.filter((p) => !p.finished);
  if (unfinished.length === 0) return [];
  const complete = unfinished.filter((p) => p.record.state === 'complete').length;
  if (pausedQueues.includes(QUEUES.write)) {
    return [`queue "${QUEUES.write}" is paused: no writer writes documents until it is resumed (Bull Board's Resume, or queue.resume())${complete > 0 ? `; ${complete} document${complete === 1 ? ' has' : 's have'} every unit answered` : ''}`];
  }
  if (writers.some((w) => !w.silent)) return [];
  const why = complete > 0
    ? `${complete} document${complete === 1 ? ' has' : 's have'} every unit answered and wait${complete === 1 ? 's' : ''} to be written`
    : `the documents will wait to be written once answered`;
  return [`no writer has a heartbeat under this prefix (${writers.length > 0 ? `${writers.length} silent` : 'none started'}): ${why}; start one (docbatch writer), or check that it reaches this Redis and prefix`];
}

/** Writes that failed and wait to be tried again (write-retries.ts), as `--wait` says them. */
async function writesFailing(redis: Redis, prefix: string, progress: readonly DocProgress[]): Promise<string[]> {
  if (!progress.some((p) => !p.finished && p.record.state === 'complete')) return [];
  const queue = openQueue('write', { redisUrl: '', prefix, attempts: 1 }, redis);
  try {
    const retrying = await readWriteRetries(queue, progress);
    return progress.flatMap((p) => {
      const w = retrying.get(p.record.docId);
      return w ? [writeFailingLine(p.record.docId, w)] : [];
    });
  } finally {
    await queue.close();
  }
}

/**
 * unservedWork for a `--wait` loop: nothing for the first `graceMs` (WAIT_NOTES_AFTER_MS: workers
 * started with the command get to say they are there), then the heartbeats read at most every
 * `everyMs`.
 */
export function unservedWatch(redis: Redis, prefix: string, options: { everyMs?: number; graceMs?: number } = {}): (progress: readonly DocProgress[]) => Promise<string[]> {
  const everyMs = options.everyMs ?? 5000;
  const from = Date.now() + (options.graceMs ?? 10_000);
  let beats: { workers: WorkerBeat[]; writers: WriterBeat[]; paused: string[]; writesFailing: string[] } | null = null;
  let readAt = 0;
  return async (progress) => {
    if (Date.now() < from) return [];
    if (beats === null || Date.now() - readAt >= everyMs) {
      beats = { workers: await readWorkers(redis, prefix), writers: await readWriters(redis, prefix), paused: await readPausedQueues(redis, prefix, progress), writesFailing: await writesFailing(redis, prefix, progress) };
      readAt = Date.now();
    }
    return [...unservedWork(progress, beats.workers, { writers: beats.writers, pausedQueues: beats.paused }), ...beats.writesFailing];
  };
}
