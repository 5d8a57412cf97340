/**
 * The shapes the engine client speaks: OpenAI chat messages in, a small result out. Kept apart
 * from client.ts so that callers (the worker, the emulator's tests) can import types alone.
 */
import type { TokenCounts } from '../usage.ts';
import type { DataUrl } from './data-url.ts';

export interface TextPart {
  type: 'text';
  text: string;
}

export interface ImagePart {
  type: 'image_url';
  /**
   * Only `data:<mime>;base64,...` URLs: the client refuses anything else (vLLM would fetch it). A
   * `DataUrl` is written into the request without joining its parts (data-url.ts).
   */
  image_url: { url: string | DataUrl; detail?: 'auto' | 'low' | 'high' };
}

export type ContentPart = TextPart | ImagePart;

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | ContentPart[];
}

/** A structured-output request, passed through as `response_format`. */
export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; json_schema: { name: string; schema: Record<string, unknown>; strict?: boolean } };

export interface ChatRequest {
  messages: ChatMessage[];
  /** `max_tokens`; always sent (vLLM's /v1/completions default of 16 is a trap). */
  maxTokens: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
  /** The model to ask; the client's configured (or discovered) model when absent. */
  model?: string;
  /** Sent as `X-Request-Id`; vLLM answers with id `chatcmpl-<requestId>`, tying logs together. */
  requestId?: string;
  responseFormat?: ResponseFormat;
}

/**
 * The answer's token counts; null when the server did not report one (no `usage`, `"usage":
 * null`, or the count null): unknown, not 0 (src/usage.ts).
 */
export type ChatUsage = TokenCounts;

export interface ChatResult {
  text: string;
  /** `stop`, `length`, `abort`, ...; null when the server did not say. */
  finishReason: string | null;
  usage: ChatUsage;
  /** From sending the request to having read the whole body. */
  latencyMs: number;
  /** The model the server says answered. */
  model: string;
  /** The server's response id (`chatcmpl-...`). */
  id: string;
  /** The answer's reasoning, its length in characters: an empty answer's `reasoning_content` (`reasoning`), or thinking written inline before the answer (inline-reasoning.ts). */
  reasoningChars?: number;
}

export interface ModelInfo {
  id: string;
  /** `max_model_len` from /v1/models; null when the server does not report it. */
  maxModelLen: number | null;
}

export interface Sum {
  sum: number;
  count: number;
}

/** What /metrics says about the engine, summed over its `engine` (data-parallel) labels. */
export interface EngineMetrics {
  /** Requests being decoded now. */
  running: number;
  /** Requests queued in the engine (its unbounded FCFS queue). */
  waiting: number;
  /** KV cache use 0..1 (the highest over engines); null when not exported. */
  kvCacheUsage: number | null;
  promptTokensTotal: number | null;
  generationTokensTotal: number | null;
  preemptionsTotal: number | null;
  /** End-to-end request latency histogram in seconds (`_sum`, `_count`). */
  e2eLatency: Sum | null;
  /** Time-to-first-token histogram in seconds (`_sum`, `_count`). */
  ttft: Sum | null;
}

export type EngineHealth = 'up' | 'dead' | 'unreachable' | 'unknown';
