/**
 * The typed queue contracts: every queue docbatch uses, the data its jobs carry, what they return,
 * their default options and the rules for their ids. This is the only place a queue name is
 * spelled; producers and workers get typed queues from here (queues/connect.ts).
 *
 * Job payloads carry references (a blob hash and a page number, or a byte range of a sidecar
 * blob), never page images or chunk texts: Redis holds a few hundred bytes per unit.
 */
import type { DefaultJobOptions } from 'bullmq';

/** Queue names. */
export const QUEUES = {
  /** One job per unit (page or chunk); consumed by GPU workers. */
  infer: 'infer',
  /** One job per finished document; consumed by the writer. */
  write: 'write',
} as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

// ---- infer ---------------------------------------------------------------------------------

/**
 * The chunks of one conversation that a conversation-level answer is made from: units
 * [first, first+count), reduced by unit `reduce`; `head` is the byte range of the first chunk's
 * sidecar line (it holds the conversation's title).
 */
export interface ChunkGroup {
  reduce: number;
  first: number;
  count: number;
  head: [offset: number, length: number];
}

/**
 * One unit of one document generation. What the unit is (a page, a whole document, a chunk)
 * follows from the document record and its task; the job carries only where to find it. The
 * feeder (src/store/feed.ts) adds these; a conversation's summary unit is added with its group
 * when its last chunk settles.
 */
export interface UnitJobData {
  docId: string;
  /** The document's generation when the job was added (bumped by `enqueue --force`). */
  gen: number;
  /** 0-based index of the unit in its document: the order of the output. */
  unit: number;
  /** Set on a conversation's summary unit. */
  reduce?: ChunkGroup;
}

/** What an infer job returns to BullMQ. The unit's real result lives in the results hash (src/store). */
export interface UnitJobResult {
  /** true when the result already existed (resume or redelivery) and the engine was not asked. */
  reused: boolean;
  /** Prompt + completion tokens spent on this unit (0 when reused; null when the engine did not report them). */
  tokens: number | null;
}

/** Job names, for people reading the dashboard: what kind of unit it is. */
export type UnitJobName = 'page' | 'document' | 'chunk' | 'conversation' | 'reduce';

// ---- write ---------------------------------------------------------------------------------

export interface WriteJobData {
  docId: string;
  gen: number;
}

export interface WriteJobResult {
  /** Absolute paths of the files written. */
  files: string[];
  completed: number;
  failed: number;
}

export type WriteJobName = 'document';

// ---- the map the typed helpers use --------------------------------------------------------

export interface QueueContracts {
  infer: { data: UnitJobData; result: UnitJobResult; name: UnitJobName };
  write: { data: WriteJobData; result: WriteJobResult; name: WriteJobName };
}

const HOUR = 3600;

/**
 * Default job options per queue. Retries of engine faults that are not the unit's fault (engine
 * down, OOM) happen inside the worker and use no attempt; `attempts` bounds the rest.
 * Job history is bounded by count and age: a unit's result lives in the results hash, not in
 * its job, so completed unit jobs are kept only as a short trail for the dashboard; failed ones
 * longer (Bull Board's Retry re-runs such a unit).
 */
export function defaultJobOptions(queue: QueueName, attempts: number, writeAttempts = WRITE_ATTEMPTS): DefaultJobOptions {
  switch (queue) {
    case 'infer':
      return {
        attempts,
        backoff: { type: 'exponential', delay: 2000, jitter: 0.5 },
        removeOnComplete: { age: HOUR, count: 100 },
        removeOnFail: { age: 7 * 24 * HOUR, count: 10_000 },
      };
    case 'write':
      return {
        attempts: writeAttempts,
        backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
        removeOnComplete: { age: 24 * HOUR, count: 100 },
        removeOnFail: { age: 7 * 24 * HOUR, count: 1000 },
      };
  }
}

/** Tries of a document's write before it is marked failed (WRITE_FAILED): about 17 minutes of backoff (WRITE_ATTEMPTS). */
export const WRITE_ATTEMPTS = 10;

// ---- job ids ---------------------------------------------------------------------------------

/** `{docId}.{gen}.{unit}`: the same unit of the same generation is one job while it exists. */
export function unitJobId(docId: string, gen: number, unit: number): string {
  return `${docId}.${gen}.${unit}`;
}

/** `{docId}.{gen}`: a document is written once per generation. */
export function writeJobId(docId: string, gen: number): string {
  return `${docId}.${gen}`;
}

/** Stalls (worker deaths) a unit survives before it fails as UNIT_STALLED. */
export const MAX_STALLED_COUNT = 3;
