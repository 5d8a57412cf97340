/**
 * Reading the bodies of successful (2xx) answers. A 200 is not always a success: servers send
 * bodies that are not JSON (a proxy's HTML page), completions without choices, or choices with
 * no text. Those become ENGINE_ERROR or EMPTY_OUTPUT here (an answer a content filter withheld:
 * CONTENT_FILTERED, the categories flagged named), so the client's callers only ever see
 * a well-formed result or an EngineError. A 200 whose body is an error (`{"error": {...}}`, as
 * some gateways and older servers send) is told apart by `carriedErrorStatus`, and classified
 * like the HTTP error it stands for.
 */
import { parseJsonLenient } from './body.ts';
import { classifyEngineResponse, EngineError } from './classify.ts';
import { splitInlineReasoning } from './inline-reasoning.ts';
import { reportedCount } from '../usage.ts';
import type { ChatResult, ChatUsage, ModelInfo } from './types.ts';

function parseJson(text: string, what: string, status: number): unknown {
  try {
    return parseJsonLenient(text);
  } catch (err) {
    const preview = text.trim().slice(0, 200);
    throw new EngineError('ENGINE_ERROR', `engine answered ${what} with a body that is not JSON: ${JSON.stringify(preview)}`, {
      status,
      cause: err,
    });
  }
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** The answer's token counts; null where the server sent none (src/usage.ts). */
function usageOf(body: Record<string, unknown>): ChatUsage {
  const usage = record(body.usage);
  return { promptTokens: reportedCount(usage?.prompt_tokens), completionTokens: reportedCount(usage?.completion_tokens) };
}

/** The message content as text: a string, or (some servers) a list of text parts. */
function contentText(content: unknown): string | null {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => {
        const p = record(part);
        return p && typeof p.text === 'string' ? p.text : '';
      })
      .join('');
  }
  return null;
}

/**
 * The HTTP status an error body sent with a 2xx stands for (`{"error": {...}}`, `{"error": "..."}`,
 * the flat `{"object": "error", ...}`); null when the body is not an error (a completion, or not
 * JSON: readChatCompletion says what is wrong with it). The error's own `code` (or `status`) when
 * it is an HTTP status, else what its type, code and message say.
 */
export function carriedErrorStatus(text: string): number | null {
  let value: unknown;
  try {
    value = parseJsonLenient(text);
  } catch {
    return null;
  }
  const body = record(value);
  if (!body || (Array.isArray(body.choices) && body.choices.length > 0)) return null;
  const nested = record(body.error);
  if (!nested && typeof body.error !== 'string' && body.object !== 'error') return null;
  const source = nested ?? body;
  for (const v of [source.code, source.status, source.status_code, body.status, body.status_code]) {
    const n = typeof v === 'string' && /^\d{3}$/.test(v) ? Number(v) : v;
    if (typeof n === 'number' && Number.isInteger(n) && n >= 400 && n <= 599) return n;
  }
  const words = [source.type, source.code, source.message, typeof body.error === 'string' ? body.error : undefined].filter((w) => typeof w === 'string').join(' ');
  if (/context_length_exceeded|context length|context window|max_model_len|prompt is too long/i.test(words)) return 400;
  if (/budget(?:_| has been )exceeded|exceeded (?:the )?budget|over budget|insufficient (?:credits|balance|funds)/i.test(words)) return 402;
  if (/insufficient_quota|rate.?limit|too many requests/i.test(words)) return 429;
  if (/not_?found|does not exist/i.test(words)) return 404;
  if (/unauthori[sz]ed|authentication|invalid_api_key|incorrect api key/i.test(words)) return 401;
  if (/permission|forbidden/i.test(words)) return 403;
  if (/overloaded|unavailable|busy|queue is full/i.test(words)) return 503;
  if (/invalid_request|bad ?request|validation|unsupported|not supported|invalid/i.test(words)) return 400;
  return 500;
}

/** The EngineError of an error body that came with a 2xx: classified as the HTTP error it carries (`status`, from carriedErrorStatus). */
export function carriedError(status: number, text: string, headers: Record<string, unknown>, sentWith: number): EngineError {
  const err = classifyEngineResponse(status, text, headers);
  return new EngineError(err.code, `${err.message} (sent as an error body with HTTP ${sentWith})`, {
    status,
    ...(err.engineMessage !== undefined ? { engineMessage: err.engineMessage } : {}),
    ...(err.engineType !== undefined ? { engineType: err.engineType } : {}),
    ...(err.engineParam !== undefined ? { engineParam: err.engineParam } : {}),
    engineDead: err.engineDead,
    ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
    ...(err.context !== undefined ? { context: err.context } : {}),
  });
}

/**
 * A tool call's arguments, for a message with no content: gateways that implement structured
 * output as a forced tool call (and some servers asked for JSON) put the answer there.
 */
function toolCallText(message: Record<string, unknown> | undefined): string | null {
  const calls = message?.tool_calls;
  if (!Array.isArray(calls) || calls.length !== 1) return null;
  const args = record(record(calls[0])?.function)?.arguments;
  if (typeof args === 'string') return args;
  return args !== undefined && args !== null && typeof args === 'object' ? JSON.stringify(args) : null;
}

/**
 * The categories a content filter flagged, from Azure's `content_filter_results` (one per
 * choice) or `prompt_filter_results` (a list, one per prompt): `sexual (medium)`, `jailbreak`.
 */
function flaggedCategories(results: unknown): string[] {
  const out: string[] = [];
  const one = (value: unknown): void => {
    const categories = record(value);
    if (!categories) return;
    for (const [name, v] of Object.entries(categories)) {
      const r = record(v);
      if (r?.filtered !== true && r?.detected !== true) continue;
      out.push(typeof r.severity === 'string' && r.severity !== '' ? `${name} (${r.severity})` : name);
    }
  };
  if (Array.isArray(results)) for (const entry of results) one(record(entry)?.content_filter_results);
  else one(results);
  return [...new Set(out)];
}

function filterWords(what: string, results: unknown, raw: unknown): string {
  const flagged = flaggedCategories(results);
  if (flagged.length > 0) return `${what}: ${flagged.join(', ')}`;
  return raw === undefined ? `${what} (no category named)` : `${what}: ${JSON.stringify(raw).slice(0, 300)}`;
}

/**
 * A provider's own word for a reply cut at its token limit, as gateways pass it on (Anthropic's
 * stop_reason `max_tokens`, Gemini's `MAX_TOKENS`, the Responses API's `max_output_tokens`): read
 * as `length`, so a page cut off is not taken for a whole one.
 */
const CUT_AT_MAX_TOKENS = /^(?:max_tokens|max_output_tokens)$/i;

/** Reads a chat completion; `latencyMs` and the fallback model come from the caller. */
export function readChatCompletion(
  text: string,
  status: number,
  fallback: { model: string; latencyMs: number },
): ChatResult {
  const body = record(parseJson(text, 'a chat completion', status));
  const choices = body?.choices;
  const promptFilter = body?.prompt_filter_results ?? body?.prompt_annotations;
  if (body && Array.isArray(choices) && choices.length === 0 && promptFilter !== undefined) {
    // Azure OpenAI (and gateways like it) withholds the answer to a filtered prompt this way.
    throw new EngineError('CONTENT_FILTERED', `the endpoint's content filter withheld the answer (200 with no choices); ${filterWords('prompt_filter_results', promptFilter, promptFilter)}`, {
      status,
      usage: usageOf(body),
    });
  }
  if (!body || !Array.isArray(choices) || choices.length === 0) {
    throw new EngineError('ENGINE_ERROR', `engine answered ${status} without choices: ${text.trim().slice(0, 200)}`, { status });
  }
  const choice = record(choices.find((c) => record(c)?.index === 0) ?? choices[0]);
  const message = record(choice?.message);
  const finishReason = typeof choice?.finish_reason === 'string' ? (CUT_AT_MAX_TOKENS.test(choice.finish_reason) ? 'length' : choice.finish_reason) : null;
  let content = contentText(message?.content);
  if (content === null || content.trim() === '') content = toolCallText(message) ?? content;
  // Thinking inline (a server without a reasoning parser): the answer is what follows it.
  const inline = content === null ? null : splitInlineReasoning(content);
  if (inline) content = inline.answer;
  // vLLM finishes a request it aborted itself (paused, draining, shutting down) with whatever
  // text it had: partial, and no fault of the request. Down: wait for /health, send again.
  if (finishReason === 'content_filter') {
    // The answer itself was filtered: any text is partial, and the same content is filtered again.
    const partial = content !== null && content.trim() !== '' ? `; the ${content.length} characters it had are partial` : ', no text';
    throw new EngineError('CONTENT_FILTERED', `the endpoint's content filter withheld the answer (finish_reason "content_filter"${partial}); ${filterWords('content_filter_results', choice?.content_filter_results, choice?.content_filter_results)}`, {
      status,
      usage: usageOf(body),
    });
  }
  if (finishReason === 'error') {
    // OpenRouter and gateways like it: the provider failed mid-answer (the error on the choice). The text is partial: sent again.
    const said = record(choice?.error);
    const what = typeof said?.message === 'string' ? `: ${said.message.slice(0, 300)}` : '';
    throw new EngineError('ENGINE_ERROR', `engine ended the answer with finish_reason "error" (its provider failed mid-answer)${what}; the text is partial`, { status, usage: usageOf(body) });
  }
  if (finishReason === 'abort') {
    // Its usage says what the engine processed before it stopped: spent all the same.
    throw new EngineError('ENGINE_DOWN', 'engine aborted the request itself (finish_reason "abort": paused, draining or shutting down); the text is partial', { status, usage: usageOf(body) });
  }
  if (content === null || content.trim() === '') {
    // A reasoning model (vLLM --reasoning-parser) whose thinking used the answer's room.
    const reasoning = (contentText(message?.reasoning_content) ?? contentText(message?.reasoning) ?? inline?.reasoning ?? '').trim();
    const where = inline && !message?.reasoning_content && !message?.reasoning ? 'inline in content, between think tags' : 'reasoning_content';
    let note = reasoning ? `; the model wrote ${reasoning.length} characters of reasoning (${where}) and no answer` : '';
    // OpenAI's structured outputs: a model that declines says so in `refusal`, not in content.
    const refusal = typeof message?.refusal === 'string' ? message.refusal.trim() : '';
    if (refusal) note += `; the model refused: ${JSON.stringify(refusal.length > 300 ? `${refusal.slice(0, 300)}…` : refusal)}`;
    throw new EngineError('EMPTY_OUTPUT', `engine answered with no text (finish_reason ${JSON.stringify(finishReason)})${note}`, {
      status,
      usage: usageOf(body),
    });
  }
  return {
    text: content,
    ...(inline ? { reasoningChars: inline.reasoning.length } : {}),
    finishReason,
    usage: usageOf(body),
    latencyMs: fallback.latencyMs,
    model: typeof body.model === 'string' ? body.model : fallback.model,
    id: typeof body.id === 'string' ? body.id : '',
  };
}

/** Reads `GET /v1/models`: `{"data":[{"id":..,"max_model_len":..}]}` (the context length under the other names servers give it too). */
export function readModels(text: string, status: number): ModelInfo[] {
  const body = record(parseJson(text, '/v1/models', status));
  const data = body?.data;
  if (!Array.isArray(data)) {
    throw new EngineError('ENGINE_ERROR', `engine answered /v1/models without a data list: ${text.trim().slice(0, 200)}`, { status });
  }
  const models: ModelInfo[] = [];
  for (const entry of data) {
    const m = record(entry);
    if (!m || typeof m.id !== 'string') continue;
    // vLLM and SGLang say max_model_len; OpenRouter-style lists context_length; llama.cpp's server
    // meta.n_ctx (its n_ctx_train is what the model was trained for, not what the server holds).
    const len = [m.max_model_len, m.context_length, record(m.meta)?.n_ctx].find((v) => typeof v === 'number' && Number.isFinite(v) && v > 0);
    models.push({ id: m.id, maxModelLen: typeof len === 'number' ? len : null });
  }
  return models;
}

/** Reads `POST /tokenize`: `{"count":N,...}` (or, failing that, the length of `tokens`). */
export function readTokenCount(text: string, status: number): number {
  const body = record(parseJson(text, '/tokenize', status));
  if (typeof body?.count === 'number') return body.count;
  // No prompt docbatch sends is empty: no tokens is a body the server did not read (llama.cpp's
  // /tokenize wants `content` and answers `{"tokens": []}` to vLLM's `prompt`/`messages`), not 0.
  if (Array.isArray(body?.tokens) && body.tokens.length > 0) return body.tokens.length;
  if (Array.isArray(body?.tokens)) throw new EngineError('ENGINE_ERROR', 'engine answered /tokenize with no tokens for a prompt that has some (a /tokenize that is not vLLM\'s?)', { status });
  throw new EngineError('ENGINE_ERROR', `engine answered /tokenize without a count: ${text.trim().slice(0, 200)}`, { status });
}

/**
 * Whether a 2xx `/health` body is a health check of every model behind a gateway rather than a
 * liveness answer: LiteLLM's proxy answers `GET /health` by sending a request to each configured
 * model (slow, and paid for on a paid endpoint) and lists `healthy_endpoints` and
 * `unhealthy_endpoints`. Such a route is no probe to ask every few seconds.
 */
export function checksEveryModel(text: string): boolean {
  if (!text.includes('_endpoints')) return false;
  try {
    const body = record(parseJsonLenient(text));
    return Array.isArray(body?.healthy_endpoints) || Array.isArray(body?.unhealthy_endpoints);
  } catch {
    return false;
  }
}

/**
 * Reads Ollama's `GET /api/ps` (`{"models":[{"name":..,"model":..,"context_length":N}]}`): the
 * context `model` is loaded with (num_ctx), else that of the only model loaded; null when it
 * does not say; undefined when the body is no such list (not Ollama's /api/ps).
 */
export function readLoadedContext(text: string, model: string): number | null | undefined {
  let body: Record<string, unknown> | undefined;
  try {
    body = record(parseJsonLenient(text));
  } catch {
    return undefined;
  }
  if (!Array.isArray(body?.models)) return undefined;
  const models = body.models.map(record).filter((m) => m !== undefined);
  // Ollama serves a model named without its tag as `:latest` of it, and lists it so.
  const names = model.includes(':') ? [model] : [model, `${model}:latest`];
  const named = models.find((m) => names.includes(m.name as string) || names.includes(m.model as string)) ?? (models.length === 1 ? models[0] : undefined);
  const len = named?.context_length;
  return typeof len === 'number' && Number.isInteger(len) && len > 0 ? len : null;
}
