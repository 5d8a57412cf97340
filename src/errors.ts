/**
 * Every error docbatch reports carries a stable string code. This module is the one place that
 * says, for each code, what it means for the work: reject the input, fail the unit for good,
 * retry it, shrink the in-flight window, or wait for the engine to come back.
 *
 * docs/errors.md is the table of codes for users; keep the two in step.
 */
import { printable } from './printable.ts';

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
  /**
   * A fault of this worker's own environment (its blob store, the model its engine serves): the
   * unit goes back to the queue without using an attempt, the worker stops taking work and
   * reports itself unhealthy until its checks pass again. A bad worker costs no unit.
   */
  | 'environment'
  /** A problem with how docbatch was started or configured: stop with exit code 2. */
  | 'usage';

interface CodeInfo {
  action: ErrorAction;
  summary: string;
  /** What happens, for docs/errors.md, where the action's usual words do not fit (eval's codes, a document's write, --wait). */
  effect?: string;
}

/** The table of codes. Adding a code here is the only way to introduce one. */
export const ERROR_CODES = {
  // ---- input files (producer) ----
  INPUT_OWN_FOLDER: { action: 'reject', summary: "The input named is docbatch's blob store (BLOB_DIR) or its cache (CACHE_DIR), or inside one: stored copies of inputs, never inputs themselves (enqueue the original files). A folder walked that holds BLOB_DIR, OUT_DIR or CACHE_DIR skips them instead, listed with why." },
  FILE_UNREADABLE: { action: 'reject', summary: 'The file cannot be read (missing, a directory, no permission), or reading it failed (an I/O error, or any errno the file system gives for this file: a sysfs attribute answers EINVAL, a FUSE or network mount its own codes); the errno is named.' },
  ZIP_SEVERAL_EXPORTS: { action: 'reject', summary: 'A .zip holds several conversations.json one folder down and none at its root (exports zipped together): reading one would drop the others; zip each export alone.' },
  FILE_CHANGED: { action: 'reject', summary: 'The file changed (its size, modification time or identity; an s3:// object: its ETag, or the store refused If-Match) while it was being read: it is still being written, or was replaced. Nothing was enqueued for it; enqueue it again once it is complete.' },
  EMPTY_FILE: { action: 'reject', summary: 'The file has zero bytes.' },
  UNSUPPORTED_FORMAT: { action: 'reject', summary: 'The bytes are neither a PDF, an image (PNG, JPEG, TIFF, WebP) nor a known chat export. In a folder such a file is skipped and listed, not rejected.' },
  NOT_PDF: { action: 'reject', summary: 'The file is named .pdf but its bytes are not a PDF.' },
  PDF_ENCRYPTED: { action: 'reject', summary: 'The PDF is encrypted and no password was given (--password-file, PDF_PASSWORD).' },
  PDF_BAD_PASSWORD: { action: 'reject', summary: 'The PDF is encrypted and the given password is wrong.' },
  PDF_CORRUPT: { action: 'reject', summary: 'The PDF is damaged or truncated and cannot be opened.' },
  PDF_NO_PAGES: { action: 'reject', summary: 'The PDF opens but has no pages.' },
  EXPORT_BAD_JSON: { action: 'reject', summary: 'The chat export is not valid JSON (the place is given as byte offset or line).' },
  EXPORT_BAD_UTF8: { action: 'reject', summary: 'The chat export is not valid UTF-8 (the byte offset is given).' },
  EXPORT_SCHEMA: { action: 'reject', summary: "The chat export is JSON but a field has the wrong shape (the field and conversation are named): of the wrong type, or an id, title or role longer than any real one (1024, 4096, 256 characters: each is repeated in every chunk it belongs to), or a role label that leaves a message split across chunks no room at CHUNK_TOKENS." },
  EXPORT_EMPTY: { action: 'reject', summary: 'The chat export holds no conversation with a visible message.' },
  EXPORT_TOO_DEEP: { action: 'reject', summary: 'The chat export nests deeper than any real export does.' },
  EXPORT_TOO_LARGE: { action: 'reject', summary: 'One conversation is larger than docbatch will hold in memory at once.' },
  ZIP_NO_CONVERSATIONS: { action: 'reject', summary: 'The .zip has no conversations.json.' },
  DOC_CONFLICT: { action: 'reject', summary: 'The same run (same content, task, model and chunk settings) was enqueued before in another shape (a chat export another docbatch version read into other chunks, a PDF whose page count differs): finish it, or use --force. An unfinished chat export goes on as it was split then (unless that split is gone from the blob store); other chunk settings are another run, not a conflict.' },
  ZIP_CORRUPT: { action: 'reject', summary: 'The .zip archive is damaged.' },
  ZIP_ENCRYPTED: { action: 'reject', summary: "The .zip's conversations.json is encrypted (password-protected: ZipCrypto or AES) and docbatch does not decrypt archives: unzip it with its password and enqueue the conversations.json inside, or zip the export again without a password. The file and the entry are named; in a folder it is an error, not skipped." },
  TASK_UNIT_MISMATCH: { action: 'reject', summary: "The task's unit does not fit this kind of input (e.g. `document` for a chat export)." },
  DOC_TOO_MANY_PAGES: { action: 'reject', summary: 'The task sends whole documents (`document` unit) and this one has more pages than its `max_pages`.' },
  IMAGE_CORRUPT: { action: 'reject', summary: 'The file is an image (PNG, JPEG, TIFF, WebP) by its bytes but cannot be decoded. A TIFF whose directory chain is damaged (a directory, a strip or a tile, or the list of their offsets or sizes lies outside the file) is refused here, naming the page and the byte, rather than failed page by page at the worker. A chain that loops back ends there, as in libtiff: no page lies beyond a loop.' },
  INPUT_INTERNAL: { action: 'reject', summary: "An unexpected error inside docbatch while this file was read (a bug in docbatch: please report it, with the file or one of the same shape). The file is rejected, naming the error; the other files go on. An interrupt, Redis going away, or a blob store that is full or read-only still stop the command." },
  IMAGE_TOO_LARGE: { action: 'reject', summary: 'The file is an image (PNG, JPEG, TIFF, WebP) with more pixels than docbatch decodes (200,000,000, as a page of 14400 x 14400 pt at 72 dpi; a decompression bomb is refused, never allocated); its size and the limit are named (of a multi-page TIFF, the page too). Scale it down or split it. (A PDF page over the render cap is drawn smaller instead: PAGE_TOO_LARGE only when that would leave it unreadable.)' },

  // ---- input limits (hardening: decompression bombs, runaway exports) ----
  ZIP_TOO_LARGE: { action: 'reject', summary: "The .zip's conversations.json would inflate beyond ZIP_MAX_BYTES or more than ZIP_MAX_RATIO times its compressed size (a decompression bomb), or inflates past the size its header declares. Nothing of it is queued." },
  EXPORT_TOO_MANY_CHUNKS: { action: 'reject', summary: 'The chat export makes more chunks than EXPORT_MAX_CHUNKS at this CHUNK_TOKENS; splitting stops at the conversation that crosses it and nothing is queued.' },
  PDF_TOO_MANY_PAGES: { action: 'reject', summary: "The PDF's page tree claims more pages than INPUT_MAX_PAGES (the count and the file's size are named): a page-tree bomb (a few KB whose /Kids repeat one page millions of times) is refused before a page dictionary is read. Nothing of it is queued; split a real document that large, or raise INPUT_MAX_PAGES." },
  IMAGE_TOO_MANY_PAGES: { action: 'reject', summary: "The TIFF has more pages (image directories) than INPUT_MAX_PAGES (the count, the file's size and the bound are named): a directory chain of a few bytes a page, each naming the same pixels, makes a 20 MB file of 200,000 pages, each a page job (and sharp reads every directory of the file to count its pages). Nothing of it is queued; split a real one, or raise INPUT_MAX_PAGES." },

  // ---- one page or chunk (worker) ----
  PAGE_TOO_LARGE: { action: 'fail', summary: 'The page would need more pixels than the render cap allows, even scaled down.' },
  RENDER_TIMEOUT: { action: 'retry', summary: 'Rendering the page took longer than its wall-clock limit in both engines (PDFium, then pdf.js); the renderers were killed.' },
  RENDER_CRASHED: { action: 'retry', summary: 'The renderer process died (crash, PDFium trap, or out of memory: its own cap or all renderers together) while rendering the page, in both engines.' },
  RENDER_FAILED: { action: 'fail', summary: 'Neither engine (PDFium, then pdf.js) could open the file or render the page; the message gives both reasons.' },
  BLOB_MISSING: { action: 'fail', summary: "The unit's input is missing from a blob store that is otherwise readable (deleted, or collected)." },
  BLOB_STORE_UNWRITABLE: { action: 'environment', effect: '`enqueue` stops (exit 1): the files before are in, nothing half-written is left; run it again once fixed', summary: "The blob store's folder cannot take what is stored into it: BLOB_DIR (or, with BLOB_DIR on s3://, the temporaries in CACHE_DIR) is full (ENOSPC, EDQUOT), not writable for this user (EACCES, EPERM) or read-only (EROFS). The folder, the errno and what to do are named; no input is blamed for it." },
  BLOB_STORE_UNAVAILABLE: { action: 'environment', summary: "This worker cannot read its blob store (BLOB_DIR missing, not shared, EMFILE, ESTALE, EIO; on s3://: the bucket missing, credentials refused, the store not answering after the SDK's retries): the unit goes back to the queue and the worker stops taking work until it can." },
  CONTEXT_TOO_LONG: { action: 'fail', summary: "The prompt and max_tokens exceed the model's context length (engine 400; or an answer whose prompt_tokens equal the context while docbatch counts the prompt well over it: the server cut the prompt and answered about a part, as Ollama does past num_ctx). When the refusal says the prompt fits and only max_tokens does not, the unit is first asked again within the room named; a page or document unit whose prompt alone does not fit (its page images are what is large) is first rendered smaller, as after an out of memory (1024, 768, 512 px below IMAGE_SIZE), and fails at the last size (src/infer/dispatch.ts)." },
  REQUEST_TOO_LARGE: { action: 'fail', summary: "The request body (a unit's page images, base64) is larger than something between docbatch and the engine takes: HTTP 413 Request Entity Too Large, nearly always a proxy or gateway (nginx's client_max_body_size is 1m unless set; vLLM itself has no body limit). A page or document unit is first rendered smaller (1024, 768, 512 px below IMAGE_SIZE) and fails at the last size; the message says what to change: IMAGE_SIZE, IMAGE_FORMAT=jpeg, or the proxy's body limit." },
  BAD_REQUEST: { action: 'fail', summary: 'The engine rejected the request as invalid (engine 400/422, e.g. too many images).' },
  MODEL_NOT_FOUND: { action: 'environment', summary: 'The engine does not serve the model this unit needs (engine 404): the unit goes back to the queue and the worker stops taking work.' },
  MODEL_NO_IMAGES: { action: 'fail', summary: "The unit sends images to a model that takes none (a text-only model named for page work)." },
  ENGINE_UNSUPPORTED: { action: 'fail', effect: 'unit fails for good; the document finishes with it listed. ENGINE_URL naming no engine: unit handed back, the worker stops taking work', summary: "The engine does not implement what the request needs (engine 501, 405, a 404 for the route), or ENGINE_URL names no engine at all (it redirects elsewhere; a Vercel host with no deployment: 404 DEPLOYMENT_NOT_FOUND): the message names the URL and what to check; a worker refuses to start at once (WORKER_UNFIT), and one running stops taking work until its engine check passes again (no unit fails for a wrong URL)." },
  ENGINE_OOM: { action: 'shrink', summary: 'The engine ran out of GPU memory ("CUDA out of memory"; an engine death counts as one too). The window halves; a unit that still runs out alone at window 1 and the smallest render fails with this code, as does one whose 10 sends mostly ran out of memory.' },
  ENGINE_DOWN: { action: 'wait', summary: 'The engine is unreachable or dead (connection refused, reset, 503, 500 EngineDeadError); units wait for /health without using attempts.' },
  ENGINE_BUSY: { action: 'wait', effect: 'window shrunk, unit sent again after a back-off (its Retry-After, if any; no attempt used); after 10 refusals it fails for good', summary: 'The engine says it is overloaded (429 without a rate limit, 503 "server busy", 529 "Overloaded"), or (vLLM from late 2024 to late 2025, 400 "Request id ... already running") that a request of the same id is still running there, sent again under another id; the window shrinks and the unit is sent again, at most 10 times in all: a unit still refused then fails with this code.' },
  ENGINE_TIMEOUT: { action: 'retry', summary: 'The engine did not answer within the request timeout; the connection was closed (which aborts the request in vLLM) and the unit retried.' },
  ENGINE_ERROR: { action: 'retry', summary: "The engine answered 5xx for another reason (or TGI's 424: a generation that failed in the server), or an unreadable body." },
  EMPTY_OUTPUT: { action: 'fail', summary: 'Every answer was empty (no text), the retries at rising temperature included.' },
  CONTENT_FILTERED: { action: 'fail', summary: "The endpoint's content filter withheld the answer (Azure OpenAI and gateways like it): a 200 with no choices and `prompt_filter_results` (the prompt was filtered), finish_reason `content_filter` (the answer was; any text it has is partial), or a 400 naming the content filter or policy. The categories flagged are named. The unit fails at once: the same content is filtered again, so it is not retried." },
  OUTPUT_TRUNCATED: { action: 'fail', summary: "Every answer was cut off at max_tokens (finish_reason `length`), the retries at rising temperature included. A JSON task's retries also double max_tokens within the model's context and output cap; one cut off at that limit fails at once. The message names what to raise (the task's sampling.max_tokens, PAGE_MAX_TOKENS or CHAT_MAX_TOKENS; or the engine's context length)." },
  OUTPUT_REPETITIVE: { action: 'fail', summary: 'Every answer degenerated into repeating one phrase, the retries at rising temperature included.' },
  OUTPUT_INVALID: { action: 'fail', summary: "Every answer was invalid JSON or broke the task's JSON Schema, the retries at rising temperature included." },
  UNIT_CRASHES_ENGINE: { action: 'fail', summary: 'Sending this unit made the engine (or a proxy in front of it) drop the connection or die, even when it was sent alone; it is not sent again.' },
  ENGINE_RATE_LIMITED: { action: 'wait', effect: 'every worker of that endpoint waits as long as it says (up to ENGINE_RETRY_AFTER_MAX_MS), unit resent (no attempt used)', summary: 'The endpoint refused the request for its rate limit (429, Retry-After); every worker of that endpoint waits, the unit uses no attempt and never fails for it.' },
  ENGINE_UNAUTHORIZED: { action: 'environment', summary: "The engine refused this worker's credentials (401/403): check ENGINE_API_KEY against the server's --api-key; the worker stops taking work." },
  ENGINE_QUOTA: { action: 'environment', summary: "The endpoint's quota, budget or credits are spent (429 insufficient_quota; 402 Payment Required, as OpenRouter's credits; a gateway's budget, LiteLLM's 400 or 429 \"Budget has been exceeded\"): retrying does not help; the worker stops taking work." },
  NOTHING_TO_SUMMARIZE: { action: 'fail', summary: "A conversation's summary could not be made: every one of its chunks failed." },
  UNIT_STALLED: { action: 'fail', summary: 'The unit was abandoned by crashed workers more often than allowed (BullMQ stalled limit).' },
  UNIT_LOST: { action: 'fail', summary: 'The unit job disappeared from Redis before finishing, and queueing it again did not help (removed by hand, or Redis lost data).' },
  ARCHIVE_CORRUPT: { action: 'fail', summary: "A line of a written document's results archive (BLOB_DIR's named/results/<docId>/<gen>.jsonl) is not a [unit, result] pair of JSON, or the archive holds fewer results than the document has units (cut short): the archive and the line are named. Its results cannot come back (retry, a rewrite, a unit delivered again); enqueue the file again with --force to redo it." },
  ARCHIVE_CHANGED: { action: 'retry', summary: "A written document's results archive was replaced each time it was read (5 times), or its units were reopened (or it was written again) each time it was restored: another write or retry of the document is running. The archive is named; nothing was changed: retry again." },
  DOC_GONE: { action: 'fail', effect: '`enqueue --wait` and `retry --wait` stop waiting for it and exit 1', summary: 'A document `--wait` waits for has no record in Redis any more: Redis lost its data while it was worked on (restarted without persistence, flushed) or the record was deleted. Its progress is gone; enqueue the same files again to redo it (exit 1 instead of waiting for ever).' },
  WRITE_FAILED: { action: 'fail', effect: 'the write is tried again (WRITE_ATTEMPTS), then the document is marked failed', summary: "The document's outputs could not be written (disk full, no permission, ...) after the write's retries; the document is marked failed and `docbatch retry` writes it again." },
  ABORTED: { action: 'retry', summary: 'The work was aborted (lock lost, shutdown); another worker takes the unit over.' },
  INTERNAL: { action: 'retry', summary: 'An unexpected error inside docbatch; the original is kept as the cause.' },

  // ---- evaluation and comparison (docbatch eval, docbatch compare) ----
  EVAL_NOT_A_DIR: { action: 'usage', summary: 'The output folder or the --truth folder given to eval/compare does not exist or is not a folder.' },
  EVAL_NO_OUTPUTS: { action: 'usage', summary: 'No X.report.json was found under the output folder, or none from the model named by --model, or (compare) outputs of fewer than two models; the models found are listed.' },
  EVAL_NO_TRUTH: { action: 'usage', summary: 'The --truth folder holds no X.json or X.md truth file.' },
  EVAL_BAD_TRUTH: { action: 'reject', effect: 'truth file skipped, the others scored, exit 2', summary: 'A truth file cannot be used (not UTF-8, not JSON, not a JSON object, a key written twice in one object); the file and the place (line, byte offset, column) are given.' },
  EVAL_BAD_OUTPUT: { action: 'fail', effect: 'reported on stderr and in problems; an unreadable output counts as missing (wrong), of two answering to one name the first is scored', summary: 'A report or output under the output folder cannot be read (the file and line are given), or two outputs of one model answer to the same name.' },

  // ---- several models per run (issue 10: X.compare.json) ----
  COMPARE_FAILED: { action: 'fail', effect: 'logged as a warning; the runs stay written, `docbatch compare OUT_DIR` gives the same figures', summary: "The writer could not write a run's X.compare.json (an output unreadable, the disk full)." },

  // ---- how docbatch was started ----
  CONFIG_INVALID: { action: 'usage', summary: 'A setting (flag or environment variable) has a bad value; the setting is named.' },
  TASK_INVALID: { action: 'usage', summary: 'A task file, `--prompt` or `--schema` is invalid; the file and the field are named.' },
  WORKER_UNFIT: { action: 'usage', summary: 'A worker found at start that it cannot do its work (engine, model, images, blob store) and did not start; the check is named.' },
  DOC_NOT_FOUND: { action: 'usage', summary: 'No document matches what `status` or `retry` was given (an id or its start, an input file name or a part of its path, or the content of a file): said on standard error for each, exit 2.' },
  REDIS_UNREACHABLE: { action: 'usage', summary: 'Redis does not answer at REDIS_URL: nothing listens there, the host is unknown, no answer in time, or what answers is not Redis (the message says which, with the URL, password masked). Every verb checks before it starts and exits 2; a running worker, writer or dashboard says it once when Redis goes away and once when it is back.' },

  // ---- the operator's view (issue 14): Redis connections said in one line ----
  REDIS_FULL: { action: 'usage', summary: "Redis refused a write because it reached its `maxmemory` (policy noeviction): raise maxmemory, or let the writer finish documents (written ones leave Redis) and run `docbatch gc`. A verb says so in one line and exits 2; a worker stops taking units (its `/health` fails; `status` cannot show it, the heartbeat being a write), says so once, and takes work again once Redis accepts writes. Answers that come back meanwhile are held in the worker (at most its window plus BATCH_SIZE) and recorded once Redis has room, without using an attempt or being sent again; a worker forced to stop first (its drain deadline) leaves those units to the queue, to run again." },
  REDIS_AUTH_FAILED: { action: 'usage', summary: 'Redis refused the user or password in REDIS_URL (WRONGPASS), wants one the URL does not give (NOAUTH), or the ACL user lacks a permission (NOPERM). A long-running process says so once and keeps retrying.' },


  LOCATIONS_OVERLAP: { action: 'usage', summary: "BLOB_DIR and OUT_DIR are the same folder (or s3:// prefix), or OUT_DIR is inside BLOB_DIR: both are named (real paths, links resolved). `enqueue`, `writer` and `gc` refuse to start: gc collects BLOB_DIR's temporaries (outputs there would go). Give them two separate folders. (BLOB_DIR inside OUT_DIR, as with OUT_DIR=. and the default ./data/blobs, is allowed.)" },

  // ---- object storage (BLOB_DIR, OUT_DIR or inputs on s3://) ----
  STORAGE_UNREACHABLE: { action: 'usage', summary: "The producer or the writer found at start that BLOB_DIR or OUT_DIR on s3:// cannot be used: the bucket does not exist, the credentials are refused or missing, no region is set, or the endpoint does not answer (after the SDK's retries); it did not start. A worker says WORKER_UNFIT (blobs) instead." },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Where in an input a problem is. Every field is optional; give what is known. */
export interface Place {
  /** The input file as the user named it. */
  file?: string;
  /** The .zip entry the offset, line or conversation is in (`export/conversations.json`). */
  entry?: string;
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

  /**
   * `file: place: CODE: message` in one line, the way it is printed to users. File names, ids,
   * fields and the message may come from an input: controls and invisible characters in them are
   * escaped (src/printable.ts), so the line is one line and reads as it prints.
   */
  describe(): string {
    const where = formatPlace(this.place);
    return `${where ? `${where}: ` : ''}${this.code}: ${printable(this.message)}`;
  }
}

/** A rejected input file (exit code 2, nothing enqueued for that file). */
export class InputError extends DocbatchError {
  constructor(code: ErrorCode, message: string, options: DocbatchErrorOptions = {}) {
    super(code, message, options);
    this.name = 'InputError';
  }
}

/** A failure met while one input file was being enqueued, as that file's rejection (the command goes on). */
export function rejectionOf(err: DocbatchError, file: string): InputError {
  return new InputError(err.code, err.message, { cause: err, place: { ...err.place, file } });
}

/** A bad setting or invocation (exit code 2). */
export class ConfigError extends DocbatchError {
  constructor(message: string, options: DocbatchErrorOptions = {}) {
    super('CONFIG_INVALID', message, options);
    this.name = 'ConfigError';
  }
}

/** The place as printed: `file: page 3: byte 120: ...`, with what came from the input escaped (src/printable.ts). */
export function formatPlace(place: Place | undefined): string {
  if (!place) return '';
  const parts: string[] = [];
  if (place.file !== undefined) parts.push(printable(place.file));
  if (place.entry !== undefined) parts.push(printable(place.entry));
  if (place.page !== undefined) parts.push(`page ${place.page}`);
  if (place.line !== undefined) parts.push(`line ${place.line}`);
  if (place.offset !== undefined) parts.push(`byte ${place.offset}`);
  if (place.conversation !== undefined) parts.push(`conversation ${printable(place.conversation)}`);
  if (place.field !== undefined) parts.push(`field ${printable(place.field)}`);
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
