/**
 * A task: what the model is asked to do with each unit of a document, and what counts as an
 * answer. Users write tasks as YAML or JSON files (docs/tasks.md); the built-in jobs are tasks
 * too (builtin.ts). A task is immutable once loaded; its identity (identity.ts) is part of a
 * run's identity, so the same file under another task is another run.
 */

/**
 * What one request covers. PDFs and images: `page` (one page per request) or `document` (all
 * pages in one request). Chat exports: `chunk` (one token-bounded chunk per request) or
 * `conversation` (one answer per conversation; long ones are summarized part by part first).
 */
export type TaskUnit = 'page' | 'document' | 'chunk' | 'conversation';

export type InputKind = 'pdf' | 'image' | 'chat';

export interface Sampling {
  /** The first try's temperature; retries raise it (answer.ts). */
  temperature: number;
  /** Absent: the worker's PAGE_MAX_TOKENS (pages, documents) or CHAT_MAX_TOKENS (chats). */
  maxTokens?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
}

export type TaskOutput =
  /** Free text (Markdown for pages). */
  | { type: 'text' }
  /** A JSON value that must validate against `schema` (JSON Schema, draft 2020-12 or 07). */
  | { type: 'json'; schema: Record<string, unknown>; name: string };

export interface Task {
  /** Shown in outputs and reports; not part of the identity. */
  name: string;
  description?: string;
  unit: TaskUnit;
  /** System message template (optional). */
  system?: string;
  /** User message template; the unit's payload (image, text layer, chunk) is attached to it. */
  prompt: string;
  output: TaskOutput;
  sampling: Sampling;
  /** Models to run every unit on (enqueue --model adds to or replaces them); empty = the engine's own. */
  models: string[];
  /** Page images; a field left out is the worker's IMAGE_SIZE / IMAGE_FORMAT. */
  image: { size?: number; format?: 'png' | 'jpeg' };
  /** Send a page's text layer with its image (as a last text part, unless the prompt places {{text}}). */
  textLayer: boolean;
  /** A sentence added to the prompt when a text layer goes with the image. */
  textLayerNote?: string;
  /** Answer retries (truncated, looping, invalid) with rising temperature before the unit fails. */
  retries: number;
  /** After the last retry of a page, use the page's own text layer (text tasks only), marked as a fallback. */
  fallback: 'none' | 'text-layer';
  /** `document` unit: most pages sent in one request; a longer document is rejected at enqueue. */
  maxPages: number;
}

/** What a run records about its task in the document record (the whole task lives in the blob store). */
export interface TaskRef {
  /** The task's identity (identity.ts): part of the run's identity. */
  hash: string;
  /** The blob holding the whole task as JSON (workers load it from the blob store). */
  blob: string;
  name: string;
  unit: TaskUnit;
  output: 'text' | 'json';
}
