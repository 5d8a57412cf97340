/** What the doc record and the results hash hold (src/store/docs.ts). */

export type DocKind = 'pdf' | 'chat';

/** enqueuing → running → complete (every unit settled) → written (outputs on disk). */
export type DocState = 'enqueuing' | 'running' | 'complete' | 'written';

/** Static facts about a document, written once per generation by the producer. */
export interface DocMeta {
  docId: string;
  kind: DocKind;
  /** The input path as the user gave it. */
  source: string;
  /** sha256 of the input file. */
  sha256: string;
  /** Output base name (without extension) in the output directory. */
  name: string;
  /** Output directory chosen at enqueue time (`--out`); the writer's own when absent. */
  outDir?: string;
  units: number;
  /** PDF: the blob holding the file. Chat: the sidecar blob holding the chunks. */
  blob: string;
  /** Chat export format (chatgpt, claude, jsonl). */
  format?: string;
  /** Chat: conversations with more than one chunk also get a summary made from their chunks' summaries. */
  conversationSummary?: boolean;
  /** Counts from splitting a chat export (conversations, messages, skipped content). */
  stats?: Record<string, unknown>;
  /** PDF password, when the file needs one. Kept in Redis: treat Redis access as document access. */
  password?: string;
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
  promptTokens: number;
  completionTokens: number;
  engineMs: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  writtenAt: string | null;
  files: string[];
}

export interface UnitResultOk {
  ok: true;
  text: string;
  promptTokens: number;
  completionTokens: number;
  /**
   * Engine time attributed to this unit: its request latency divided by the number of requests
   * that shared the engine with it (from this worker's view), in ms. Sums to about the wall time
   * the engine spent on the document.
   */
  engineMs: number;
  latencyMs: number;
  model: string;
  finishReason: string;
  worker: string;
  /** Page units: the longest side actually sent (smaller after an OOM), and render time. */
  imageSize?: number;
  renderMs?: number;
  /** Page units: the engine that drew the page; `rendererFallback` when the other one failed first. */
  renderer?: 'pdfium' | 'pdfjs';
  rendererFallback?: boolean;
}

export interface UnitResultFailed {
  ok: false;
  code: string;
  message: string;
  worker?: string;
}

export type UnitResult = UnitResultOk | UnitResultFailed;

export interface SettleOutcome {
  /**
   * recorded: this call wrote the unit's result; duplicate: a result already existed (unchanged);
   * lock-lost: the job's lock is no longer ours (nothing written); stale: the document moved to a
   * newer generation; missing: no such document.
   */
  outcome: 'recorded' | 'duplicate' | 'lock-lost' | 'stale' | 'missing';
  settled: number;
  units: number;
  /** True for exactly one call per document generation: the one that settled its last unit. */
  last: boolean;
  /** True for exactly one call per conversation group: the one that settled its last chunk. */
  groupDone: boolean;
}
