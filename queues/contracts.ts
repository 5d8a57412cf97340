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

interface UnitBase {
  /** The document this unit belongs to. */
  docId: string;
  /** The document's generation when the job was added (bumped by `enqueue --force`). */
  gen: number;
  /** 0-based index of the unit in its document: the order of the output. */
  unit: number;
}

/** A page of a PDF: the worker renders page `page` of blob `blob`. */
export interface PageUnit extends UnitBase {
  kind: 'page';
  /** sha256 of the PDF in BLOB_DIR. */
  blob: string;
  /** 1-based page number. */
  page: number;
}

/**
 * The chunks of one conversation that a conversation-level summary is made from (enqueue
 * --conversation-summary): units [first, first+count), reduced by unit `reduce`; `head` is the
 * byte range of the first chunk's sidecar line (it holds the conversation's title).
 */
export interface ChunkGroup {
  reduce: number;
  first: number;
  count: number;
  head: [offset: number, length: number];
}

/** A chunk of a chat export: bytes [offset, offset+length) of sidecar blob `blob` (one JSON line). */
export interface ChunkUnit extends UnitBase {
  kind: 'chunk';
  blob: string;
  offset: number;
  length: number;
  /** Set when the conversation gets a summary made from its chunks' summaries. */
  group?: ChunkGroup;
}

/** A conversation's summary made from its chunks' summaries; added when the last of them settles. */
export interface ReduceUnit extends UnitBase {
  kind: 'reduce';
  blob: string;
  group: ChunkGroup;
}

export type UnitJobData = PageUnit | ChunkUnit | ReduceUnit;

/** What an infer job returns to BullMQ. The unit's real result lives in the results hash (src/store). */
export interface UnitJobResult {
  /** true when the result already existed (resume or redelivery) and the engine was not asked. */
  reused: boolean;
  /** Prompt + completion tokens spent on this unit (0 when reused). */
  tokens: number;
}

export type UnitJobName = 'page' | 'chunk' | 'reduce';

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
 * Completed unit jobs are kept an hour (their results live in the results hash; the job only
 * dedups a second enqueue while it exists); failed ones a week, for the dashboard and `status`.
 */
export function defaultJobOptions(queue: QueueName, attempts: number): DefaultJobOptions {
  switch (queue) {
    case 'infer':
      return {
        attempts,
        backoff: { type: 'exponential', delay: 2000, jitter: 0.5 },
        removeOnComplete: { age: HOUR, count: 50_000 },
        removeOnFail: { age: 7 * 24 * HOUR },
      };
    case 'write':
      return {
        attempts: 10,
        backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
        removeOnComplete: { age: 7 * 24 * HOUR, count: 10_000 },
        removeOnFail: { age: 30 * 24 * HOUR },
      };
  }
}

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
