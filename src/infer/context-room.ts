/**
 * How many tokens a unit may ask for: within the model's context as far as it is known
 * (`fitMaxTokens`, before a send), the room a context-length refusal leaves it (`roomFrom`,
 * after one: the unit is asked again within it, or fails with CONTEXT_TOO_LONG), and how far a
 * JSON answer cut off at max_tokens may be asked again with more (`maxTokensLimit`,
 * `raisedMaxTokens`).
 */
import type { EngineClient } from '../engine/client.ts';
import { EngineError } from '../engine/classify.ts';
import type { DocbatchError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import type { Prepared } from './units.ts';

/**
 * Keep prompt + max_tokens inside the model's context when the context is known; never more than
 * the unit asks for (a one-word classification's 5 stays 5), and at least 64 when the context
 * seems full (the estimate is rough: the engine says CONTEXT_TOO_LONG if it really is).
 */
export function fitMaxTokens(prepared: Prepared, maxModelLen: number | null): number {
  if (!maxModelLen) return prepared.maxTokens;
  const room = maxModelLen - prepared.promptTokensEstimate - 64;
  return Math.min(prepared.maxTokens, Math.max(64, room));
}

/** What bounds a unit's max_tokens from above, as far as it is known: the room the context leaves its prompt, or the endpoint's cap on the model's replies. */
export interface MaxTokensLimit {
  tokens: number;
  by: 'context' | 'cap';
}

/**
 * The limit of a unit's max_tokens: the room the engine named (`roomLeft`), else the room its
 * context length leaves our estimate of the prompt, and the model's learnt output cap, whichever
 * is lower; null when neither is known (the engine says CONTEXT_TOO_LONG if a request overflows).
 */
export function maxTokensLimit(prepared: Prepared, maxModelLen: number | null, roomLeft: number | null, cap: number | null): MaxTokensLimit | null {
  const room = roomLeft ?? (maxModelLen ? fitMaxTokens({ ...prepared, maxTokens: Number.MAX_SAFE_INTEGER }, maxModelLen) : null);
  let limit: MaxTokensLimit | null = room === null ? null : { tokens: room, by: 'context' };
  if (cap !== null && (limit === null || cap < limit.tokens)) limit = { tokens: cap, by: 'cap' };
  return limit;
}

/**
 * The max_tokens of the next try after a JSON answer was cut off at `sent` (its JSON unfinished:
 * asking again with as many tokens would cut it again): twice as many, within `limit`; null when
 * it cannot rise.
 */
export function raisedMaxTokens(sent: number, limit: MaxTokensLimit | null): number | null {
  const next = Math.min(sent * 2, limit?.tokens ?? Number.POSITIVE_INFINITY);
  return next > sent ? next : null;
}

/**
 * The max_tokens that fits, when a CONTEXT_TOO_LONG names the context length and the prompt
 * alone fits (at least 16 tokens of room); null otherwise (the prompt itself is too long: the
 * unit fails). The prompt's tokens are the engine's count when it names them; when it names only
 * a lower bound (vLLM stops counting a prompt once it cannot fit: "at least N input tokens"),
 * the engine is asked to count it (`/tokenize`), else the lower bound and our estimate stand in;
 * when only max_tokens is named (vLLM's "max_tokens=N cannot be greater than max_model_len=M"),
 * our estimate. One token is kept spare: SGLang refuses prompt + max_tokens equal to the
 * context, vLLM and TGI take it. The engine's context length is remembered for the next requests.
 */
export async function roomFrom(err: DocbatchError, client: EngineClient, prepared: Prepared, signal: AbortSignal, log: Logger): Promise<number | null> {
  if (!(err instanceof EngineError) || err.code !== 'CONTEXT_TOO_LONG' || !err.context) return null;
  const { maxContextLength, maxTokens, promptTokensAtLeast } = err.context;
  let { promptTokens } = err.context;
  if (maxContextLength === null) return null;
  if (promptTokens === null && promptTokensAtLeast !== undefined) {
    promptTokens = await countPrompt(client, prepared, signal, log);
    if (promptTokens === null) {
      // Not counted: the estimate, never below what the engine said the prompt is at least.
      const estimate = { ...prepared, promptTokensEstimate: Math.max(prepared.promptTokensEstimate, promptTokensAtLeast) };
      const room = fitMaxTokens(estimate, maxContextLength);
      if (room < 16 || maxContextLength - estimate.promptTokensEstimate < 16 || (maxTokens !== null && room >= maxTokens)) return null;
      client.learnContextLength(maxContextLength);
      return room;
    }
  }
  let room: number;
  if (promptTokens !== null) room = maxContextLength - promptTokens - 1;
  else if (maxTokens !== null && maxTokens >= maxContextLength) room = fitMaxTokens(prepared, maxContextLength);
  else return null;
  if (room < 16 || (maxTokens !== null && room >= maxTokens)) return null;
  client.learnContextLength(maxContextLength);
  return room;
}

/**
 * Whether a CONTEXT_TOO_LONG says the prompt alone leaves no room in the context (less than the
 * 16 tokens roomFrom asks for), by the engine's own count of it: then no max_tokens helps, and only
 * a smaller prompt (its pages rendered smaller) may fit. False when the refusal does not count
 * the prompt (a lower bound, or no number): it may be max_tokens that did not fit.
 */
export function promptAloneTooLong(err: DocbatchError): boolean {
  if (!(err instanceof EngineError) || err.code !== 'CONTEXT_TOO_LONG' || !err.context) return false;
  const { maxContextLength, promptTokens } = err.context;
  return maxContextLength !== null && promptTokens !== null && maxContextLength - promptTokens < 16;
}

/** The prompt's tokens as the engine counts them (`/tokenize`); null when it cannot say (no such route, an error). */
async function countPrompt(client: EngineClient, prepared: Prepared, signal: AbortSignal, log: Logger): Promise<number | null> {
  try {
    return await client.tokenize({ messages: prepared.request.messages }, AbortSignal.any([signal, AbortSignal.timeout(10_000)]));
  } catch (err) {
    if (signal.aborted) throw err;
    log.debug({ err: (err as Error).message }, 'could not count the prompt at the engine (/tokenize)');
    return null;
  }
}
