/**
 * Reading the bodies of successful (2xx) answers. A 200 is not always a success: servers send
 * bodies that are not JSON (a proxy's HTML page), completions without choices, or choices with
 * no text. Those become ENGINE_ERROR or EMPTY_OUTPUT here, so the client's callers only ever see
 * a well-formed result or an EngineError.
 */
import { parseJsonLenient } from './body.ts';
import { EngineError } from './classify.ts';
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

/** Reads a chat completion; `latencyMs` and the fallback model come from the caller. */
export function readChatCompletion(
  text: string,
  status: number,
  fallback: { model: string; latencyMs: number },
): ChatResult {
  const body = record(parseJson(text, 'a chat completion', status));
  const choices = body?.choices;
  if (!body || !Array.isArray(choices) || choices.length === 0) {
    throw new EngineError('ENGINE_ERROR', `engine answered ${status} without choices: ${text.trim().slice(0, 200)}`, { status });
  }
  const choice = record(choices.find((c) => record(c)?.index === 0) ?? choices[0]);
  const message = record(choice?.message);
  const finishReason = typeof choice?.finish_reason === 'string' ? choice.finish_reason : null;
  const content = contentText(message?.content);
  // vLLM finishes a request it aborted itself (paused, draining, shutting down) with whatever
  // text it had: partial, and no fault of the request. Down: wait for /health, send again.
  if (finishReason === 'abort') {
    throw new EngineError('ENGINE_DOWN', 'engine aborted the request itself (finish_reason "abort": paused, draining or shutting down); the text is partial', { status });
  }
  if (content === null || content.trim() === '') {
    // A reasoning model (vLLM --reasoning-parser) whose thinking used the answer's room.
    const reasoning = (contentText(message?.reasoning_content) ?? contentText(message?.reasoning) ?? '').trim();
    const note = reasoning ? `; the model wrote ${reasoning.length} characters of reasoning (reasoning_content) and no answer` : '';
    throw new EngineError('EMPTY_OUTPUT', `engine answered with no text (finish_reason ${JSON.stringify(finishReason)})${note}`, {
      status,
      usage: usageOf(body),
    });
  }
  return {
    text: content,
    finishReason,
    usage: usageOf(body),
    latencyMs: fallback.latencyMs,
    model: typeof body.model === 'string' ? body.model : fallback.model,
    id: typeof body.id === 'string' ? body.id : '',
  };
}

/** Reads `GET /v1/models`: `{"data":[{"id":..,"max_model_len":..}]}`. */
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
    const len = m.max_model_len;
    models.push({ id: m.id, maxModelLen: typeof len === 'number' && Number.isFinite(len) && len > 0 ? len : null });
  }
  return models;
}

/** Reads `POST /tokenize`: `{"count":N,...}` (or, failing that, the length of `tokens`). */
export function readTokenCount(text: string, status: number): number {
  const body = record(parseJson(text, '/tokenize', status));
  if (typeof body?.count === 'number') return body.count;
  if (Array.isArray(body?.tokens)) return body.tokens.length;
  throw new EngineError('ENGINE_ERROR', `engine answered /tokenize without a count: ${text.trim().slice(0, 200)}`, { status });
}
