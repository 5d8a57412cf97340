/**
 * Rate limits as a paid OpenAI-compatible endpoint enforces them (vLLM itself has none): requests
 * and tokens per window, per API key and model; tokens are prompt + max_tokens, counted when the
 * request arrives. Windows are fixed (counters that reset, as LiteLLM's per-minute ones), back to
 * back from the first request of each key and model; a refused request does not count.
 *
 * Over a limit: 429 with `Retry-After` (whole seconds, at least 1), `retry-after-ms`, and the
 * `x-ratelimit-*` headers, which every accepted answer carries too. A request larger than the
 * token limit on its own gets 429 "Request too large" without Retry-After: waiting cannot help.
 */
import { RATE_WINDOW_MS, type RateLimit } from './answer-options.ts';
import { rateLimited } from './errors.ts';

/** What one key and model did in one window. */
export interface RateWindowStats {
  /** Start of the window, ms since the epoch (the key's first request + a multiple of windowMs). */
  start: number;
  windowMs: number;
  /** The bearer token the window counts ('' for requests without one). */
  apiKey: string;
  model: string;
  /** Limits in force at the window's last request; null: none. */
  rpm: number | null;
  tpm: number | null;
  acceptedRequests: number;
  /** Prompt + max_tokens of the accepted requests. */
  acceptedTokens: number;
  refusedRequests: number;
  refusedTokens: number;
}

/** Closed windows kept for stats (the oldest are dropped past this). */
const WINDOW_HISTORY = 10_000;

/** `17ms`, `1.5s`, `6m0s`, as OpenAI writes x-ratelimit-reset-*. */
export function formatReset(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(3))}s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes}m${Number(((ms - minutes * 60_000) / 1000).toFixed(3))}s`;
}

export class RateLimiter {
  private readonly current = new Map<string, RateWindowStats>();
  /** Where each key and model's windows start counting from. */
  private readonly origins = new Map<string, { at: number; windowMs: number }>();
  private readonly closed: RateWindowStats[] = [];

  /**
   * Counts a request of `tokens` (prompt + max_tokens) against the limits. Returns the headers
   * for the answer, or throws the 429 ApiError (with its headers).
   */
  admit(limit: RateLimit, apiKey: string, model: string, tokens: number, now = Date.now()): Record<string, string> {
    const windowMs = limit.windowMs ?? RATE_WINDOW_MS;
    const id = `${apiKey}\u0000${model}`;
    let origin = this.origins.get(id);
    if (!origin || origin.windowMs !== windowMs) {
      origin = { at: now, windowMs };
      this.origins.set(id, origin);
    }
    const start = origin.at + Math.floor((now - origin.at) / windowMs) * windowMs;
    let w = this.current.get(id);
    if (!w || w.start !== start || w.windowMs !== windowMs) {
      if (w) this.retire(w);
      w = { start, windowMs, apiKey, model, rpm: null, tpm: null, acceptedRequests: 0, acceptedTokens: 0, refusedRequests: 0, refusedTokens: 0 };
      this.current.set(id, w);
    }
    w.rpm = limit.rpm ?? null;
    w.tpm = limit.tpm ?? null;
    const resetMs = start + windowMs - now;
    const { rpm, tpm } = limit;
    let message: string | null = null;
    let retry = true;
    const again = `Please try again in ${formatReset(resetMs)}.`;
    if (tpm !== undefined && tokens > tpm) {
      message = `Request too large for ${model} on tokens per min (TPM): Limit ${tpm}, Requested ${tokens}. The input or output tokens must be reduced in order to run successfully.`;
      retry = false;
    } else if (rpm !== undefined && w.acceptedRequests + 1 > rpm) {
      message = `Rate limit reached for ${model} on requests per min (RPM): Limit ${rpm}, Used ${w.acceptedRequests}, Requested 1. ${again}`;
    } else if (tpm !== undefined && w.acceptedTokens + tokens > tpm) {
      message = `Rate limit reached for ${model} on tokens per min (TPM): Limit ${tpm}, Used ${w.acceptedTokens}, Requested ${tokens}. ${again}`;
    }
    if (message !== null) {
      w.refusedRequests++;
      w.refusedTokens += tokens;
      const headers = this.headers(limit, w, resetMs);
      if (retry) {
        headers['retry-after'] = String(Math.max(1, Math.ceil(resetMs / 1000)));
        headers['retry-after-ms'] = String(Math.max(1, Math.ceil(resetMs)));
      }
      throw rateLimited(message, headers);
    }
    w.acceptedRequests++;
    w.acceptedTokens += tokens;
    return this.headers(limit, w, resetMs);
  }

  /** Every window seen (closed ones first, then the latest per key and model), oldest first. */
  stats(): RateWindowStats[] {
    const all = [...this.closed, ...this.current.values()].map((w) => ({ ...w }));
    return all.sort((a, b) => a.start - b.start || a.apiKey.localeCompare(b.apiKey) || a.model.localeCompare(b.model));
  }

  private retire(w: RateWindowStats): void {
    this.closed.push(w);
    if (this.closed.length > WINDOW_HISTORY) this.closed.splice(0, this.closed.length - WINDOW_HISTORY);
  }

  private headers(limit: RateLimit, w: RateWindowStats, resetMs: number): Record<string, string> {
    const h: Record<string, string> = {};
    if (limit.rpm !== undefined) {
      h['x-ratelimit-limit-requests'] = String(limit.rpm);
      h['x-ratelimit-remaining-requests'] = String(Math.max(0, limit.rpm - w.acceptedRequests));
      h['x-ratelimit-reset-requests'] = formatReset(resetMs);
    }
    if (limit.tpm !== undefined) {
      h['x-ratelimit-limit-tokens'] = String(limit.tpm);
      h['x-ratelimit-remaining-tokens'] = String(Math.max(0, limit.tpm - w.acceptedTokens));
      h['x-ratelimit-reset-tokens'] = formatReset(resetMs);
    }
    return h;
  }
}
