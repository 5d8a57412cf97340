/**
 * The one place that turns what an OpenAI-compatible server did into an error code.
 *
 * Two entry points: `classifyEngineResponse(status, body)` for an HTTP answer, and
 * `classifyTransportError(err)` for a request that got no (complete) answer. Both return an
 * `EngineError`; neither throws. docs/engine-client.md has the table these rules implement.
 *
 * The server's message, type and numbers are read out of its body by error-body.ts (every error
 * shape seen in the wild); the rules below decide what they mean.
 */
import { DocbatchError, type ErrorCode } from '../errors.ts';
import { parseContextOverflow, parseErrorBody, type ContextOverflow } from './error-body.ts';
import { hasRateLimitHeaders, rateResetMs, retryAfterMs } from './retry-after.ts';
import type { ChatUsage } from './types.ts';

export interface EngineErrorOptions {
  cause?: unknown;
  /** HTTP status, when the server answered. */
  status?: number;
  engineMessage?: string;
  engineType?: string;
  engineParam?: string;
  /**
   * True when the server says its engine died (vLLM's EngineDeadError / "EngineCore encountered
   * an issue"). The cause is unknown to the client (a CUDA OOM or anything else); the worker
   * treats a death as an out-of-memory signal and shrinks. See docs/engine-client.md.
   */
  engineDead?: boolean;
  /**
   * True when the answer says ENGINE_URL itself names no engine (a redirect elsewhere, a Vercel
   * host with no deployment): no wait helps, so a worker starting refuses at once.
   */
  wrongUrl?: boolean;
  /** From a `Retry-After` header, when one was sent. */
  retryAfterMs?: number;
  context?: ContextOverflow;
  /** An answer that came as an error (EMPTY_OUTPUT, CONTENT_FILTERED, finish_reason "abort"): the token counts it reported. */
  usage?: ChatUsage;
}

/** Every failure the engine client reports. `code` is one of the engine codes of src/errors.ts. */
export class EngineError extends DocbatchError {
  readonly status: number | undefined;
  /** The engine's own message, as sent (truncated to 2000 characters). */
  readonly engineMessage: string | undefined;
  /** The body's `type` (`BadRequestError`, `NotFoundError`, ...). */
  readonly engineType: string | undefined;
  readonly engineParam: string | undefined;
  readonly engineDead: boolean;
  /** The answer says ENGINE_URL names no engine (see EngineErrorOptions). */
  readonly wrongUrl: boolean;
  readonly retryAfterMs: number | undefined;
  /** Set for CONTEXT_TOO_LONG. */
  readonly context: ContextOverflow | undefined;
  /** Set for an answer that came as an error: EMPTY_OUTPUT, CONTENT_FILTERED, finish_reason "abort" (null counts: not reported). */
  readonly usage: ChatUsage | undefined;

  constructor(code: ErrorCode, message: string, options: EngineErrorOptions = {}) {
    super(code, message, options.cause === undefined ? {} : { cause: options.cause });
    this.name = 'EngineError';
    this.status = options.status;
    this.engineMessage = options.engineMessage;
    this.engineType = options.engineType;
    this.engineParam = options.engineParam;
    this.engineDead = options.engineDead ?? false;
    this.wrongUrl = options.wrongUrl ?? false;
    this.retryAfterMs = options.retryAfterMs;
    this.context = options.context;
    this.usage = options.usage;
  }
}

export function isEngineError(err: unknown): err is EngineError {
  return err instanceof EngineError;
}

// ---- the rules ----

/** Cloudflare's statuses for an origin that is down, refusing, or cannot be reached. */
export const ORIGIN_DOWN = new Set([520, 521, 522, 523, 530]);

const OOM = /out of memory|OutOfMemoryError/i;
/** "OOM when allocating ..." and the like; upper case only, so a model named "bloom" is safe. */
const OOM_SHORT = /\bOOM\b/;
const ENGINE_DEAD = /EngineDeadError|EngineCore encountered an issue|engine (?:core |loop )?(?:has )?died|Background loop has errored|engine loop is not running/i;
const BUSY = /busy|queue is full|too many (?:pending |concurrent )?requests|overloaded|maximum pending requests|capacity/i;
const CONTEXT =
  /maximum context length|context length|context window|context size|maximum model length|max_model_len|context_length_exceeded|prompt is too long|longer than the maximum|`?max_new_tokens`? must be <=|`?inputs`? must have less than|exceeds the maximum allowed length/i;
const MODEL = /\bmodel\b/i;
/** A quota, a gateway's budget (LiteLLM: "Budget has been exceeded!", "over budget", type budget_exceeded) or prepaid credits spent. */
const QUOTA = /insufficient_quota|exceeded your current quota|quota (?:exceeded|exhausted)|billing|budget(?:_| has been )exceeded|exceeded (?:the )?budget|over budget|insufficient (?:credits|balance|funds)/i;
const RATE_LIMIT = /rate.?limit|too many requests|requests per min|tokens per min|\bRPM\b|\bTPM\b/i;
/** A hosted endpoint's content filter refusing the prompt (Azure OpenAI: code `content_filter`, "... content management policy"). */
const CONTENT_FILTER = /content management policy|content_filter|content filter|ResponsibleAIPolicyViolation/i;
/** vLLM's refusal of more images than --limit-mm-per-prompt allows (older builds: 1 by default). */
const IMAGE_LIMIT = /At most (\d+) image\(s\) may be provided in one (?:prompt|request)/i;
/** What servers say when a text-only model is sent an image (vLLM, SGLang, OpenAI-style gateways). */
const NO_IMAGES = /not a multimodal model|does not support (?:image|multi-?modal|vision)|image inputs? (?:is|are) not supported|no (?:image|vision) support|only supports text|image_url is not supported|at most 0 image\(s\) may be provided/i;

/** The body as text, whichever form it came in (for a code carried beside the message). */
function rawText(body: unknown): string {
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return Buffer.from(body).toString('utf8');
  try {
    return JSON.stringify(body) ?? '';
  } catch {
    return '';
  }
}

/**
 * Vercel's answer for a host that names no deployment (`x-vercel-error: DEPLOYMENT_NOT_FOUND`,
 * or that code in the body: "The deployment could not be found on Vercel. DEPLOYMENT_NOT_FOUND").
 * Not a model the engine lacks (Azure's "API deployment" is one): there is no engine there at all.
 */
function deploymentNotFound(text: string, headers: Record<string, unknown> | undefined): boolean {
  const said = headers?.['x-vercel-error'];
  return (typeof said === 'string' && said.trim().toUpperCase() === 'DEPLOYMENT_NOT_FOUND') || /\bDEPLOYMENT_NOT_FOUND\b/.test(text.slice(0, 4096));
}

/**
 * Classifies an HTTP answer with a status of 300 or more. `body` is the raw text (or bytes, or
 * an already-parsed value); `headers` are only read for `Retry-After`, a redirect's `Location`
 * and Vercel's `x-vercel-error`; `url`, the URL asked, is named where the answer is about the
 * URL itself (a host with no deployment).
 */
export function classifyEngineResponse(
  status: number,
  body: unknown,
  headers?: Record<string, unknown>,
  url?: string,
): EngineError {
  const parsed = parseErrorBody(body);
  const said = parsed.message || `HTTP ${status}`;
  const base: EngineErrorOptions = {
    status,
    engineMessage: parsed.message || undefined,
    engineType: parsed.type,
    engineParam: parsed.param,
    retryAfterMs: retryAfterMs(headers),
  };
  const make = (code: ErrorCode, message: string, extra: EngineErrorOptions = {}) =>
    new EngineError(code, message, { ...base, ...extra });
  const text = `${parsed.type ?? ''} ${parsed.message}`;
  const dead = status >= 500 && ENGINE_DEAD.test(text);

  // Out of memory first: whatever the status, a server that says so has no room for this load.
  if (OOM.test(text) || OOM_SHORT.test(text)) {
    return make('ENGINE_OOM', `engine ran out of memory (${status}): ${said}`, { engineDead: dead });
  }
  if (dead) {
    return make('ENGINE_DOWN', `engine died (${status}): ${said}`, { engineDead: true });
  }
  // Not transient: 402 Payment Required (OpenRouter's credits), or a 429 or 400 saying so (a LiteLLM budget).
  if (status === 402 || ((status === 429 || status === 400) && QUOTA.test(text))) return make('ENGINE_QUOTA', `endpoint quota spent (${status}): ${said}`);
  if (status === 429) {
    base.retryAfterMs ??= rateResetMs(headers);
    // A paid or shared endpoint's limiter (it says so, or tells when to come back) versus an
    // overloaded server: the first waits as told and never fails a unit.
    const limited = parsed.type === 'rate_limit_exceeded' || RATE_LIMIT.test(text) || base.retryAfterMs !== undefined || hasRateLimitHeaders(headers);
    return limited ? make('ENGINE_RATE_LIMITED', `endpoint rate limit (429): ${said}`) : make('ENGINE_BUSY', `engine is overloaded (429): ${said}`);
  }
  if (status === 503 || status === 529) {
    return BUSY.test(parsed.message) || status === 529 // 529: Anthropic's (and others') "Overloaded"
      ? make('ENGINE_BUSY', `engine is overloaded (${status}): ${said}`)
      : make('ENGINE_DOWN', `engine unavailable (503)${parsed.message ? `: ${parsed.message}` : ''}`);
  }
  // A reverse proxy in front of an engine that is restarting or stuck; Cloudflare's own statuses
  // for an origin down, refusing or unreachable (520-523, 530: a tunnel whose connector is gone).
  if (status === 502 || ORIGIN_DOWN.has(status)) return make('ENGINE_DOWN', `engine unreachable behind a proxy (${status}): ${said}`);
  // 524: Cloudflare gave up on an origin slower than its 100 s (a long answer: raise the proxy's timeout).
  if (status === 504 || status === 524) {
    // Answered by a proxy that gave up, not by the engine (which has no timeout of its own).
    return make('ENGINE_TIMEOUT', `a proxy in front of the engine gave up waiting for the answer (${status}; nginx's proxy_read_timeout is 60 s unless set, Cloudflare waits 100 s): raise it above REQUEST_TIMEOUT_MS, or ask for shorter answers: ${said}`);
  }
  if (status === 408) return make('ENGINE_TIMEOUT', `engine timed out (408): ${said}`);
  if (status === 401 || status === 403) {
    return make('ENGINE_UNAUTHORIZED', `engine refused the credentials (${status}: ${said}); check ENGINE_API_KEY against the server's --api-key`);
  }
  if (status === 404) {
    // Checked before the model words: "The deployment could not be found" is no model's.
    if (deploymentNotFound(rawText(body), headers)) {
      return make(
        'ENGINE_UNSUPPORTED',
        `no deployment at ${url ?? 'ENGINE_URL'} (404 DEPLOYMENT_NOT_FOUND from Vercel): the host names no deployment at all, so no engine answers there; check ENGINE_URL's host for a typo, a deployment that was deleted, or a preview URL that no longer exists (use the project's production domain): ${said}`,
        { wrongUrl: true },
      );
    }
    // A model message (vLLM's "The model `x` does not exist.", Ollama's "model \"x\" not found")
    // against a bare route miss ({"detail":"Not Found"}, an HTML 404 page).
    // Azure OpenAI's model is a deployment: "The API deployment for this resource does not exist." (code DeploymentNotFound).
    const modelMiss = parsed.type === 'NotFoundError' || ((MODEL.test(parsed.message) || /\bdeployment\b/i.test(parsed.message)) && parsed.message !== 'Not Found');
    return modelMiss
      ? make('MODEL_NOT_FOUND', `engine does not serve the model: ${said}`)
      : make('ENGINE_UNSUPPORTED', `engine has no such endpoint (404): ${said}`);
  }
  if (status === 405 || status === 501) {
    return make('ENGINE_UNSUPPORTED', `engine does not support this request (${status}): ${said}`);
  }
  if (status === 400 || status === 413 || status === 422) {
    if (parsed.param === 'input_tokens' || CONTEXT.test(parsed.message)) {
      const context = parseContextOverflow(parsed.message);
      // llama.cpp (2025 builds): "the request exceeds the available context size", the numbers in fields.
      context.maxContextLength ??= parsed.nCtx ?? null;
      context.promptTokens ??= parsed.nPromptTokens ?? null;
      return make('CONTEXT_TOO_LONG', `prompt and max_tokens exceed the model's context: ${said}`, { context });
    }
    if (CONTENT_FILTER.test(text)) return make('CONTENT_FILTERED', `the endpoint's content filter refused the request (${status}): ${said}`);
    if (NO_IMAGES.test(text)) return make('MODEL_NO_IMAGES', `the model takes no images (${status}): ${said}`);
    const images = IMAGE_LIMIT.exec(text);
    if (images) {
      return make('BAD_REQUEST', `the engine takes at most ${images[1]} image(s) in one prompt and this request sends more (${status}: ${said}); start vLLM with --limit-mm-per-prompt '{"image": N}' (older builds default to 1), or use a task whose unit sends fewer pages (unit page, or max_pages)`);
    }
    // vLLM from late 2024 to late 2025: this X-Request-Id is still running there (a unit sent again while its first send is aborted). Not the unit's fault: sent again, under another id.
    if (/\bRequest id \S+ already running/i.test(parsed.message)) return make('ENGINE_BUSY', `engine refused a request id still running there (${status}): ${said}`);
    if (status === 413) {
      // Seldom the engine itself (vLLM has no body limit): a proxy in front of it.
      return make(
        'REQUEST_TOO_LARGE',
        `the request body is too large for what is in front of the engine (413, nearly always a proxy: nginx's client_max_body_size is 1m unless set); raise that limit, or send smaller requests (page images: IMAGE_SIZE, or IMAGE_FORMAT=jpeg; chat chunks: CHUNK_TOKENS): ${said}`,
      );
    }
    return make('BAD_REQUEST', `engine rejected the request (${status}): ${said}`);
  }
  if (status >= 300 && status < 400) {
    // undici follows no redirect, and must not: a POST redirected (301, 302) becomes a GET
    // without its body. ENGINE_URL names the wrong place (http for https, a moved gateway).
    const raw = headers?.location;
    const location = Array.isArray(raw) ? String(raw[0]) : typeof raw === 'string' ? raw : '(no Location)';
    return make('ENGINE_UNSUPPORTED', `engine redirects to ${location} (${status}): docbatch does not follow redirects (a redirected POST can lose its body); set ENGINE_URL to where it points`, { wrongUrl: true });
  }
  // 424: TGI's "Request failed during generation: Server error: ..." (its own fault, not the request's).
  if (status >= 500 || status === 424) return make('ENGINE_ERROR', `engine failed (${status}): ${said}`);
  if (status >= 400) return make('BAD_REQUEST', `engine rejected the request (${status}): ${said}`);
  return make('ENGINE_ERROR', `engine answered an unexpected ${status}: ${said}`);
}

// ---- transport ----

const DOWN_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ETIMEDOUT', // a connect that got no SYN-ACK: the host is unreachable, the request never ran
  'UND_ERR_SOCKET', // "other side closed": the engine closed the socket before (all of) its answer
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const ABORT_CODES = new Set(['UND_ERR_ABORTED', 'UND_ERR_ABORT', 'ABORT_ERR', 'UND_ERR_DESTROYED', 'UND_ERR_CLOSED']);
const INTERNAL_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_INVALID_RETURN_VALUE', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_URL']);

/** The error itself, then its `cause` chain and an AggregateError's members (happy eyeballs). */
function* chain(err: unknown, depth = 0): Generator<unknown> {
  if (depth > 6 || err === null || err === undefined) return;
  yield err;
  if (err instanceof AggregateError) for (const e of err.errors) yield* chain(e, depth + 1);
  if (err instanceof Error && err.cause !== undefined) yield* chain(err.cause, depth + 1);
}

function codeOf(err: unknown): string | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Classifies a request that got no complete answer: refused, reset, closed mid-body, DNS,
 * timeouts, aborts. An error that is already an EngineError is returned as is.
 */
export function classifyTransportError(err: unknown): EngineError {
  if (err instanceof EngineError) return err;
  const detail = err instanceof Error ? err.message || err.name : String(err);
  for (const e of chain(err)) {
    const code = codeOf(e);
    const name = e instanceof Error ? e.name : undefined;
    if ((code !== undefined && ABORT_CODES.has(code)) || name === 'AbortError') {
      return new EngineError('ABORTED', `request to the engine was aborted: ${detail}`, { cause: err });
    }
    if (name === 'TimeoutError' || (code !== undefined && TIMEOUT_CODES.has(code))) {
      return new EngineError('ENGINE_TIMEOUT', `engine did not answer in time: ${detail}`, { cause: err });
    }
    if (code !== undefined && DOWN_CODES.has(code)) {
      return new EngineError('ENGINE_DOWN', `engine unreachable (${code}): ${detail}`, { cause: err });
    }
    if (code !== undefined && INTERNAL_CODES.has(code)) {
      return new EngineError('INTERNAL', `bad request built by docbatch (${code}): ${detail}`, { cause: err });
    }
  }
  // HPE_* (not HTTP), UND_ERR_RES_EXCEEDED_MAX_SIZE, and anything unforeseen.
  return new EngineError('ENGINE_ERROR', `request to the engine failed: ${detail}`, { cause: err });
}
