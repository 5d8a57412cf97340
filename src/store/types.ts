/** What the doc record and the results hash hold (src/store/docs.ts). */
import type { TaskRef } from '../task/types.ts';

export type DocKind = 'pdf' | 'image' | 'chat';

/**
 * enqueuing → running → complete (every unit settled) → written (outputs on disk), or failed
 * (its outputs could not be written: WRITE_FAILED; `docbatch retry` writes it again).
 */
export type DocState = 'enqueuing' | 'running' | 'complete' | 'written' | 'failed';

/** Static facts about a run: one input, one task, one model. Written once per generation by the producer. */
export interface DocMeta {
  docId: string;
  kind: DocKind;
  /** The input path as the user gave it. */
  source: string;
  /** sha256 of the input file. */
  sha256: string;
  /** Output base name (without extension). */
  name: string;
  /** Folder of the outputs under the writer's OUT_DIR ('' = OUT_DIR itself): `--out`, then the model's folder. */
  outSub: string;
  units: number;
  /** Units the feeder queues: all but the conversation summaries, which are added as their chunks settle. */
  feedUnits: number;
  /** PDF, image: the input blob. Chat: the sidecar blob holding the chunks (one JSON line each). */
  blob: string;
  /** Chat: the chunk index blob (16 bytes per chunk: offset, length, summary unit). */
  index?: string;
  /** PDF, image: pages. */
  pages?: number;
  /** Chat export format (chatgpt, claude, jsonl); image format. */
  format?: string;
  /** Chat: conversations with more than one chunk also get a summary made from their chunks' summaries. */
  conversationSummary?: boolean;
  /** Counts from splitting a chat export (conversations, messages, skipped content); PDF info. */
  stats?: Record<string, unknown>;
  /** The PDF needs a password (kept in the record's `password` field until the document is written). */
  encrypted?: boolean;
  task: TaskRef;
  /** The model this run asks for; null: whatever the engine serves. */
  model: string | null;
  /** The infer queue of its units (queues/routes.ts). */
  queue: string;
  /** Feeding priority: higher goes first (enqueue --priority). */
  priority: number;
  /** Runs of the same input and task on other models enqueued together (X.compare.json). */
  siblings?: string[];
  enqueuedAt: string;
}

export interface DocRecord {
  docId: string;
  meta: DocMeta;
  gen: number;
  units: number;
  state: DocState;
  done: number;
  failed: number;
  /** Tokens the engine reported, over every unit settled (a lower bound when unitsWithoutUsage > 0). */
  promptTokens: number;
  completionTokens: number;
  /** Units whose tokens the engine did not (all) report, each counted once however often it settled (a retry) (src/usage.ts). */
  unitsWithoutUsage: number;
  engineMs: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** When failed units were last reopened (retry): the current run started there. */
  resumedAt: string | null;
  /** Units settled (done + failed) when they were reopened: what the current run started from. */
  resumedFrom: number;
  writtenAt: string | null;
  files: string[];
  /** Set when the outputs could not be written (state failed). */
  writeError: { code: string; message: string } | null;
  /** The next unit the feeder looks at, and how many it feeds. */
  fed: number;
  /**
   * Times failed units of this generation were reopened (retry). A write marks the document
   * written only if this has not moved since it read the record.
   */
  reopens: number;
}

/** Provenance and effort shared by answers and failures. */
interface UnitTrail {
  worker?: string;
  /** The engine that answered (URL without credentials). */
  engine?: string;
  /** Codes of answers rejected before this one (truncated, looping, invalid), in order. */
  retried?: string[];
}

export interface UnitResultOk extends UnitTrail {
  ok: true;
  text: string;
  /** JSON tasks: the validated value. */
  data?: unknown;
  /** Over the unit's answers; null when one of them did not report it (unknown, not 0: src/usage.ts). */
  promptTokens: number | null;
  completionTokens: number | null;
  /**
   * Engine time attributed to this unit: its request latency divided by the number of requests
   * that shared the engine with it (from this worker's view), in ms. Sums to about the wall time
   * the engine spent on the document.
   */
  engineMs: number;
  latencyMs: number;
  model: string;
  finishReason: string;
  /** Page units: the longest side actually sent (smaller after an OOM), and render time. */
  imageSize?: number;
  renderMs?: number;
  /** Which renderer drew the page (pdfium, pdfjs; sharp for image files). */
  renderer?: string;
  /** The page was drawn by the fallback renderer after the default one failed on it. */
  rendererFallback?: boolean;
  /** Set when the answer is not the model's: the page's own text layer after the last retry. */
  fallback?: 'text-layer';
}

export interface UnitResultFailed extends UnitTrail {
  ok: false;
  code: string;
  message: string;
  /** What the engine spent on answers that were all rejected (counted in the document's cost); null: not reported. */
  promptTokens?: number | null;
  completionTokens?: number | null;
  engineMs?: number;
  /** Pages drawn before the unit failed: which renderer drew them, and whether it was the fallback one. */
  renderer?: string;
  rendererFallback?: boolean;
}

export type UnitResult = UnitResultOk | UnitResultFailed;

/** Of a unit's tokens and engine time, what was counted in its record already (DocStore.addSpent), as its answers came. */
export interface CountedSpend {
  promptTokens: number;
  completionTokens: number;
  engineMs: number;
}

export interface SettleOutcome {
  /**
   * recorded: this call wrote the unit's result; duplicate: a result already existed (unchanged);
   * lock-lost: the job's lock is no longer ours (nothing written); stale: the document moved to a
   * newer generation; missing: no such document; reopened: a unit of the document was reopened
   * since this one read its inputs (nothing written: a summary runs again from fresh parts).
   */
  outcome: 'recorded' | 'duplicate' | 'lock-lost' | 'stale' | 'missing' | 'reopened';
  settled: number;
  units: number;
  /** True for exactly one call per document generation: the one that settled its last unit. */
  last: boolean;
  /** True for exactly one call per conversation group: the one that settled its last chunk. */
  groupDone: boolean;
  /**
   * Recorded by an earlier run of this very call (its reply lost; ioredis sent it again on
   * reconnect): `last` and `groupDone` of that run are not known, so what they made due is
   * ensured (settleUnit does).
   */
  again?: true;
}
