/**
 * Reading what an OpenAI-compatible server said in an error answer: its message, type and param,
 * whatever shape the body has, and the numbers of a context-length refusal. What the answer
 * means (its error code) is classify.ts's to decide; this module only reads.
 *
 * Servers disagree on error bodies, so the message is dug out of every shape seen in the wild:
 *   vLLM (since 2025-08), OpenAI, Ollama  {"error":{"message":..,"type":..,"param":..,"code":..}}
 *   older vLLM, SGLang                     {"object":"error","message":..,"type":..,"code":..}
 *   FastAPI (unknown route, validation)    {"detail":"Not Found"} / {"detail":[{"msg":..}]}
 *   auth middleware, Ollama native         {"error":"Unauthorized"}
 *   proxies, crashes                        text/html, plain text, empty
 */
import { parseJsonLenient } from './body.ts';

/** Numbers read out of a context-length message; any may be missing from a server's wording. */
export interface ContextOverflow {
  /** The model's context length (`max_model_len`). */
  maxContextLength: number | null;
  /** Prompt (input) tokens of the rejected request. */
  promptTokens: number | null;
  /** Output tokens the request asked for (`max_tokens`). */
  maxTokens: number | null;
  /**
   * A lower bound of the prompt, where that is all the server names (vLLM counts a prompt only
   * up to what could fit before refusing it: "your prompt contains at least N input tokens");
   * `promptTokens` is null then. Absent when the server named no bound.
   */
  promptTokensAtLeast?: number;
}

/** The parts of an error body every server shape reduces to. */
export interface ParsedErrorBody {
  message: string;
  type: string | undefined;
  param: string | undefined;
  /** False when the body was not JSON (an HTML page from a proxy, a plain-text crash). */
  json: boolean;
  /** llama.cpp's context refusal names its numbers in fields beside the message (`n_ctx`, `n_prompt_tokens`). */
  nCtx?: number;
  nPromptTokens?: number;
}

const MAX_MESSAGE = 2000;

function str(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

function clip(text: string): string {
  const flat = text.trim();
  return flat.length > MAX_MESSAGE ? `${flat.slice(0, MAX_MESSAGE)}…` : flat;
}

/** Reads the message, type and param out of any of the error shapes listed at the top. */
export function parseErrorBody(body: unknown): ParsedErrorBody {
  let value = body;
  if (typeof body === 'string' || body instanceof Uint8Array) {
    const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
    if (text.trim() === '') return { message: '', type: undefined, param: undefined, json: false };
    try {
      value = parseJsonLenient(text);
    } catch {
      return { message: clip(stripHtml(text)), type: undefined, param: undefined, json: false };
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { message: clip(str(value) ?? ''), type: undefined, param: undefined, json: true };
  }
  const obj = value as Record<string, unknown>;
  // Nested: {"error": {...}} (vLLM now, OpenAI, Ollama) or {"error": "Unauthorized"}.
  const inner = obj.error;
  if (typeof inner === 'string') {
    return { message: clip(inner), type: str(obj.type), param: str(obj.param), json: true };
  }
  const source = inner !== null && typeof inner === 'object' ? (inner as Record<string, unknown>) : obj;
  let message = str(source.message) ?? str(source.msg);
  if (message === undefined && 'detail' in obj) message = detailMessage(obj.detail);
  const count = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined);
  const nCtx = count(source.n_ctx);
  const nPromptTokens = count(source.n_prompt_tokens);
  return {
    message: clip(message ?? ''),
    type: str(source.type),
    param: str(source.param),
    json: true,
    ...(nCtx !== undefined ? { nCtx } : {}),
    ...(nPromptTokens !== undefined ? { nPromptTokens } : {}),
  };
}

/** FastAPI: `detail` is a string, or a list of validation errors `{loc, msg, type}`. */
function detailMessage(detail: unknown): string {
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((d) => {
        if (d === null || typeof d !== 'object') return String(d);
        const item = d as Record<string, unknown>;
        const loc = Array.isArray(item.loc) ? item.loc.join('.') : '';
        return `${loc ? `${loc}: ` : ''}${str(item.msg) ?? JSON.stringify(item)}`;
      })
      .join('; ');
  }
  return JSON.stringify(detail) ?? '';
}

function stripHtml(text: string): string {
  if (!/<[a-z!/]/i.test(text)) return text;
  const title = /<title>([^<]*)<\/title>/i.exec(text)?.[1];
  return (title ?? text.replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ');
}

/**
 * Pulls the numbers out of the context-length messages of vLLM (old and new), SGLang, TGI,
 * llama.cpp and OpenAI, e.g.
 *   vLLM 0.16  "You passed 1700 input tokens and requested 512 output tokens. However, the model's
 *              context length is only 2000 tokens, ..."
 *   vLLM       "max_tokens=8888 cannot be greater than max_model_len=max_total_tokens=3072."
 *   TGI        "`inputs` tokens + `max_new_tokens` must be <= 2000. Given: 1700 `inputs` tokens and
 *              512 `max_new_tokens`"
 *   llama.cpp  "request (5000 tokens) exceeds the available context size (4096 tokens)"
 *   vLLM       "... you requested 512 output tokens and your prompt contains at least 3585 input
 *              tokens, for a total of at least 4097 tokens." (a lower bound: it stopped counting)
 */
export function parseContextOverflow(message: string): ContextOverflow {
  const num = (re: RegExp): number | null => {
    const m = re.exec(message);
    return m?.[1] === undefined ? null : Number(m[1]);
  };
  const first = (...res: RegExp[]): number | null => {
    for (const re of res) {
      const n = num(re);
      if (n !== null) return n;
    }
    return null;
  };
  const atLeast = num(/at least (\d+) input tokens/i);
  return {
    ...(atLeast !== null ? { promptTokensAtLeast: atLeast } : {}),
    maxContextLength: first(
      /maximum context length (?:is|of) (\d+)/i,
      /maximum model length (?:is |of )?(\d+)/i,
      /context length \((\d+) tokens?\)/i,
      /context length is only (\d+)/i,
      /max_model_len=(?:max_total_tokens=)?(\d+)/i,
      /max_model_len[^\d]{0,10}(\d+)/i,
      /`?max_new_tokens`? must be <= (\d+)/i,
      /context size \((\d+) tokens?\)/i, /`?inputs`? must have less than (\d+) tokens/i, // the last: TGI's input limit
    ),
    promptTokens: first(
      // Not vLLM's "(more than N characters, which is the upper bound for M input tokens)": a bound, not the prompt.
      // Nor vLLM's "at least N input tokens": a lower bound (promptTokensAtLeast).
      /(?<!upper bound for |at least |\d)(\d+) input tokens/i,
      /prompt contains (\d+)\b(?! characters)/i,
      /\((\d+) in the messages/i,
      /(\d+) tokens from the input/i,
      /prompt \(length (\d+)\)/i,
      /prompt length (?:of )?(\d+)/i,
      /input \((\d+) tokens?\)/i,
      /messages resulted in (\d+) tokens/i,
      /Given: (\d+) `?inputs`? tokens/i,
      /request \((\d+) tokens?\)/i, /must have less than \d+ tokens\. Given: (\d+)/i,
    ),
    maxTokens: first(
      /requested (\d+) output tokens/i,
      /(\d+) in the completion/i,
      /is too large: (\d+)/i,
      /(\d+) tokens for the completion/i,
      /max_(?:completion_)?tokens=(\d+)/i,
      /(\d+) `?max_new_tokens`?/i,
    ),
  };
}
