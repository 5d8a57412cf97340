/**
 * Every error docbatch reports carries a stable string code. This module is the one place that
 * says, for each code, what it means for the work: reject the input, fail the unit for good,
 * retry it, shrink the in-flight window, or wait for the engine to come back.
 *
 * docs/errors.md is the table of codes for users; keep the two in step.
 */

/** What the pipeline does when a unit (page or chunk) hits an error with this code. */
export type ErrorAction =
  /** The input file is rejected at enqueue time; nothing is enqueued for it. */
  | 'reject'
  /** The unit fails for good; the document still finishes with the failure listed. */
  | 'fail'
  /** A transient fault of this item: retry it (bounded by the job's attempts). */
  | 'retry'
  /** The engine ran out of memory: halve the in-flight window, wait for health, retry. */
  | 'shrink'
  /** The engine is down or unreachable: pause intake, wait for health, retry without using an attempt. */
  | 'wait'
  /** A problem with how docbatch was started or configured: stop with exit code 2. */
  | 'usage';

interface CodeInfo {
  action: ErrorAction;
  summary: string;
}

/** The table of codes. Adding a code here is the only way to introduce one. */
export const ERROR_CODES = {
  // ---- input files (producer) ----
  FILE_UNREADABLE: { action: 'reject', summary: 'The file cannot be read (missing, a directory, no permission).' },
  EMPTY_FILE: { action: 'reject', summary: 'The file has zero bytes.' },
  UNSUPPORTED_FORMAT: { action: 'reject', summary: 'The bytes are neither a PDF nor a known chat export.' },
  NOT_PDF: { action: 'reject', summary: 'The file is named .pdf but its bytes are not a PDF.' },
  PDF_ENCRYPTED: { action: 'reject', summary: 'The PDF is encrypted and no password was given (--password).' },
  PDF_BAD_PASSWORD: { action: 'reject', summary: 'The PDF is encrypted and the given password is wrong.' },
  PDF_CORRUPT: { action: 'reject', summary: 'The PDF is damaged or truncated and cannot be opened.' },
  PDF_NO_PAGES: { action: 'reject', summary: 'The PDF opens but has no pages.' },
  EXPORT_BAD_JSON: { action: 'reject', summary: 'The chat export is not valid JSON (the place is given as byte offset or line).' },
  EXPORT_BAD_UTF8: { action: 'reject', summary: 'The chat export is not valid UTF-8 (the byte offset is given).' },
  EXPORT_SCHEMA: { action: 'reject', summary: 'The chat export is JSON but a field has the wrong shape (the field and conversation are named).' },
  EXPORT_EMPTY: { action: 'reject', summary: 'The chat export holds no conversation with a visible message.' },
  EXPORT_TOO_DEEP: { action: 'reject', summary: 'The chat export nests deeper than any real export does.' },
  EXPORT_TOO_LARGE: { action: 'reject', summary: 'One conversation is larger than docbatch will hold in memory at once.' },
  ZIP_NO_CONVERSATIONS: { action: 'reject', summary: 'The .zip has no conversations.json.' },
  DOC_CONFLICT: { action: 'reject', summary: 'The same content is already enqueued with other settings (e.g. chunk size); finish it or use --force.' },
  ZIP_CORRUPT: { action: 'reject', summary: 'The .zip archive is damaged.' },

  // ---- one page or chunk (worker) ----
  PAGE_TOO_LARGE: { action: 'fail', summary: 'The page would need more pixels than the render cap allows, even scaled down.' },
  RENDER_TIMEOUT: { action: 'retry', summary: 'Rendering the page took longer than its wall-clock limit in both engines (PDFium, then pdf.js); the renderers were killed.' },
  RENDER_CRASHED: { action: 'retry', summary: 'The renderer process died (crash, PDFium trap, or out of memory: its own cap or all renderers together) while rendering the page, in both engines.' },
  RENDER_FAILED: { action: 'fail', summary: 'Neither engine (PDFium, then pdf.js) could open the file or render the page; the message gives both reasons.' },
  BLOB_MISSING: { action: 'fail', summary: "The unit's input is missing from BLOB_DIR (not shared between machines, or deleted)." },
  CONTEXT_TOO_LONG: { action: 'fail', summary: "The prompt and max_tokens exceed the model's context length (engine 400)." },
  BAD_REQUEST: { action: 'fail', summary: 'The engine rejected the request as invalid (engine 400/422, e.g. too many images).' },
  MODEL_NOT_FOUND: { action: 'fail', summary: 'The engine does not serve the configured model (engine 404).' },
  ENGINE_UNSUPPORTED: { action: 'fail', summary: 'The engine does not implement what the request needs (engine 501).' },
  ENGINE_OOM: { action: 'shrink', summary: 'The engine ran out of GPU memory ("CUDA out of memory"; an engine death counts as one too). The window halves; a unit that still runs out alone at window 1 and the smallest render fails with this code.' },
  ENGINE_DOWN: { action: 'wait', summary: 'The engine is unreachable or dead (connection refused, reset, 503, 500 EngineDeadError); units wait for /health without using attempts.' },
  ENGINE_BUSY: { action: 'wait', summary: 'The engine says it is overloaded (429, or 503 "server busy"); the window shrinks and the unit is retried.' },
  ENGINE_TIMEOUT: { action: 'retry', summary: 'The engine did not answer within the request timeout; the connection was closed (which aborts the request in vLLM) and the unit retried.' },
  ENGINE_ERROR: { action: 'retry', summary: 'The engine answered 5xx for another reason, or an unreadable body.' },
  EMPTY_OUTPUT: { action: 'retry', summary: 'The engine answered with no text.' },
  NOTHING_TO_SUMMARIZE: { action: 'fail', summary: "A conversation's summary could not be made: every one of its chunks failed." },
  UNIT_STALLED: { action: 'fail', summary: 'The unit was abandoned by crashed workers more often than allowed (BullMQ stalled limit).' },
  UNIT_LOST: { action: 'fail', summary: 'The unit job disappeared from Redis before finishing (removed by hand, or Redis lost data).' },
  ABORTED: { action: 'retry', summary: 'The work was aborted (lock lost, shutdown); another worker takes the unit over.' },
  INTERNAL: { action: 'retry', summary: 'An unexpected error inside docbatch; the original is kept as the cause.' },

  // ---- how docbatch was started ----
  CONFIG_INVALID: { action: 'usage', summary: 'A setting (flag or environment variable) has a bad value; the setting is named.' },
  REDIS_UNREACHABLE: { action: 'usage', summary: 'Redis does not answer at REDIS_URL.' },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Where in an input a problem is. Every field is optional; give what is known. */
export interface Place {
  /** The input file as the user named it. */
  file?: string;
  /** Byte offset from the start of the file (or of the zip entry). */
  offset?: number;
  /** 1-based line (JSONL) . */
  line?: number;
  /** 1-based page number. */
  page?: number;
  /** Conversation id or index ("conversation #12 (id abc)"). */
  conversation?: string;
  /** A JSON path of the offending field, e.g. `mapping.n1.message.content.parts[0]`. */
  field?: string;
}

export interface DocbatchErrorOptions {
  cause?: unknown;
  place?: Place;
}

/** The base class: an error with a stable code and, when known, its place in an input. */
export class DocbatchError extends Error {
  readonly code: ErrorCode;
  readonly place: Place | undefined;

  constructor(code: ErrorCode, message: string, options: DocbatchErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DocbatchError';
    this.code = code;
    this.place = options.place;
  }

  get action(): ErrorAction {
    return ERROR_CODES[this.code].action;
  }

  /** `file: place: CODE: message` in one line, the way it is printed to users. */
  describe(): string {
    const where = formatPlace(this.place);
    return `${where ? `${where}: ` : ''}${this.code}: ${this.message}`;
  }
}

/** A rejected input file (exit code 2, nothing enqueued for that file). */
export class InputError extends DocbatchError {
  constructor(code: ErrorCode, message: string, options: DocbatchErrorOptions = {}) {
    super(code, message, options);
    this.name = 'InputError';
  }
}

/** A bad setting or invocation (exit code 2). */
export class ConfigError extends DocbatchError {
  constructor(message: string, options: DocbatchErrorOptions = {}) {
    super('CONFIG_INVALID', message, options);
    this.name = 'ConfigError';
  }
}

export function formatPlace(place: Place | undefined): string {
  if (!place) return '';
  const parts: string[] = [];
  if (place.file !== undefined) parts.push(place.file);
  if (place.page !== undefined) parts.push(`page ${place.page}`);
  if (place.line !== undefined) parts.push(`line ${place.line}`);
  if (place.offset !== undefined) parts.push(`byte ${place.offset}`);
  if (place.conversation !== undefined) parts.push(`conversation ${place.conversation}`);
  if (place.field !== undefined) parts.push(`field ${place.field}`);
  return parts.join(': ');
}

export function isDocbatchError(err: unknown): err is DocbatchError {
  return err instanceof DocbatchError;
}

/** Wraps anything thrown into a DocbatchError, keeping the original as `cause`. */
export function toDocbatchError(err: unknown, fallback: ErrorCode = 'INTERNAL'): DocbatchError {
  if (err instanceof DocbatchError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new DocbatchError(fallback, message, { cause: err });
}

export function actionFor(code: string): ErrorAction {
  return code in ERROR_CODES ? ERROR_CODES[code as ErrorCode].action : 'retry';
}
