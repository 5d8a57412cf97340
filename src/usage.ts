/**
 * Tokens as the engine reported them, and how docbatch shows tokens it did not report.
 *
 * vLLM sends `usage` with every answer; other OpenAI-compatible servers and gateways may send no
 * `usage`, `"usage": null`, or its counts null. Such tokens are unknown, not 0:
 *
 * - a request's counts, and a unit's over its answers (retries), are `number | null`; a unit's
 *   count is null as soon as one of its answers did not report it (`addCounts`);
 * - a document's totals add up what was reported (a lower bound then) and count the units
 *   settled with a count unreported (`units_without_usage` in its record, `lacksUsage`);
 * - outputs say so: an X.jsonl line has `"usage": null` when nothing was reported for its unit
 *   (`usageJson`); the report and `status --json` add `units_without_usage` and a `tokens_note`,
 *   and give a total as null when nothing at all was reported (`totalJson`); `docbatch status`
 *   shows `≥1234` for a lower bound and `?` when nothing was reported (`formatTokens`).
 *
 * Pure, and below every room (the engine client, the worker, the store, the writer, status and
 * metrics all use it).
 */

/** A request's or a unit's token counts; null: the engine did not report it (unknown, not 0). */
export interface TokenCounts {
  promptTokens: number | null;
  completionTokens: number | null;
}

/**
 * What an attempt's answers cost beyond what the document's record counts already (the answers
 * rejected and counted as they came): the attempt's settle and its count without a settle add
 * only this. A count not reported stays null (unknown).
 */
export function uncountedSpend(
  spent: TokenCounts & { engineMs: number },
  counted: { promptTokens: number; completionTokens: number; engineMs: number } | undefined,
): TokenCounts & { engineMs: number } {
  return {
    promptTokens: spent.promptTokens === null ? null : Math.max(0, spent.promptTokens - (counted?.promptTokens ?? 0)),
    completionTokens: spent.completionTokens === null ? null : Math.max(0, spent.completionTokens - (counted?.completionTokens ?? 0)),
    engineMs: Math.max(0, spent.engineMs - (counted?.engineMs ?? 0)),
  };
}

/** Nothing reported. */
export const UNREPORTED: TokenCounts = Object.freeze({ promptTokens: null, completionTokens: null });

/** A count as an engine sent it: a finite number ≥ 0, else null (absent, null, not a count). */
export function reportedCount(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null;
}

/** The counts of two answers of one unit: a count is unknown once either answer's is. */
export function addCounts(a: TokenCounts, b: TokenCounts): TokenCounts {
  return {
    promptTokens: a.promptTokens === null || b.promptTokens === null ? null : a.promptTokens + b.promptTokens,
    completionTokens: a.completionTokens === null || b.completionTokens === null ? null : a.completionTokens + b.completionTokens,
  };
}

/**
 * Whether a settled unit's tokens are not (all) known: one of its counts is null. A failed unit
 * that never had an answer has no counts (undefined): nothing was spent, nothing is unknown.
 */
export function lacksUsage(counts: { promptTokens?: number | null; completionTokens?: number | null }): boolean {
  return counts.promptTokens === null || counts.completionTokens === null;
}

/** A unit's `usage` in an X.jsonl line: null when the engine reported none of it. */
export function usageJson(counts: TokenCounts): { prompt_tokens: number | null; completion_tokens: number | null } | null {
  if (counts.promptTokens === null && counts.completionTokens === null) return null;
  return { prompt_tokens: counts.promptTokens, completion_tokens: counts.completionTokens };
}

/**
 * A total for JSON outputs (`prompt_tokens`, `completion_tokens` of a report, of `status
 * --json`): the sum of what was reported (a lower bound when `unitsWithoutUsage` > 0), or null
 * when units went without usage and nothing was reported at all.
 */
export function totalJson(sum: number, unitsWithoutUsage: number): number | null {
  return unitsWithoutUsage > 0 && sum === 0 ? null : sum;
}

/** A total as text: `1234`, `≥1234` (a lower bound: some units had no usage), `?` (none reported). */
export function formatTokens(sum: number, unitsWithoutUsage: number): string {
  if (unitsWithoutUsage <= 0) return String(sum);
  return sum === 0 ? '?' : `≥${sum}`;
}

/** What JSON outputs say beside totals that are not exact; null when they are. */
export function tokensNote(unitsWithoutUsage: number): string | null {
  if (unitsWithoutUsage <= 0) return null;
  const units = unitsWithoutUsage === 1 ? '1 unit' : `${unitsWithoutUsage} units`;
  return `the engine reported no token usage for ${units}: prompt_tokens and completion_tokens are a lower bound (null: none was reported)`;
}

/** `units_without_usage` and, when some, `tokens_note`: the keys JSON outputs add beside their totals. */
export function usageKeys(unitsWithoutUsage: number): { units_without_usage: number; tokens_note?: string } {
  const note = tokensNote(unitsWithoutUsage);
  return { units_without_usage: unitsWithoutUsage, ...(note ? { tokens_note: note } : {}) };
}
