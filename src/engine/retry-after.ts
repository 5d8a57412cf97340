/**
 * When an endpoint says to come back, read off its answer's headers: `Retry-After` (seconds or
 * an HTTP date), Azure OpenAI's `retry-after-ms`, and OpenAI-style `x-ratelimit-*` budgets
 * (`x-ratelimit-remaining-requests`, `x-ratelimit-reset-requests: 6m0s`, and `-tokens`).
 */
export function hasRateLimitHeaders(headers: Record<string, unknown> | undefined): boolean {
  return headers !== undefined && Object.keys(headers).some((k) => k.toLowerCase().startsWith('x-ratelimit-'));
}

function header(headers: Record<string, unknown> | undefined, name: string): string | undefined {
  const raw = headers?.[name];
  const value = Array.isArray(raw) ? raw[0] : raw;
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/** `Retry-After` (seconds or an HTTP date), or Azure OpenAI's `retry-after-ms`. */
export function retryAfterMs(headers: Record<string, unknown> | undefined): number | undefined {
  const ms = Number(header(headers, 'retry-after-ms'));
  if (Number.isFinite(ms) && ms >= 0 && header(headers, 'retry-after-ms') !== undefined) return Math.round(ms);
  const value = header(headers, 'retry-after');
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** A rate-limit reset as OpenAI-style endpoints write it: `1s`, `6m0s`, `20ms`, `1h2m3.5s`, or bare seconds. */
function durationMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (/^\d+(?:\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const m = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$/.exec(text);
  if (!m || m.slice(1).every((g) => g === undefined)) return undefined;
  const [h, min, sec, ms] = m.slice(1).map((g) => Number(g ?? 0)) as [number, number, number, number];
  return Math.round(((h * 60 + min) * 60 + sec) * 1000 + ms);
}

/**
 * When a 429 without Retry-After may be sent again: the reset (`x-ratelimit-reset-requests`,
 * `-tokens`) of each budget the endpoint says is spent (`x-ratelimit-remaining-*` 0), the later
 * of them; undefined when none is said spent.
 */
export function rateResetMs(headers: Record<string, unknown> | undefined): number | undefined {
  let wait: number | undefined;
  for (const kind of ['requests', 'tokens']) {
    const remaining = header(headers, `x-ratelimit-remaining-${kind}`);
    const reset = durationMs(header(headers, `x-ratelimit-reset-${kind}`));
    if (remaining !== undefined && Number(remaining) <= 0 && reset !== undefined) wait = Math.max(wait ?? 0, reset);
  }
  return wait;
}
