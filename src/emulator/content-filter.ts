/**
 * A hosted endpoint's content filter (Azure OpenAI and gateways built like it), acted out: a
 * request whose text contains one of the rule's strings is withheld, with status 200 as Azure
 * sends it, never reaching the engine.
 *
 * - `on: 'prompt'`: the prompt was filtered. `choices: []` and `prompt_filter_results`, one entry
 *   per prompt with its categories (`sexual` flagged, severity `medium`).
 * - `on: 'output'`: the answer was filtered. One choice with no content, `finish_reason:
 *   "content_filter"` and its `content_filter_results` (`violence` flagged, severity `high`).
 *
 * As a stream: the same as chunks (the prompt's results first, choices empty), then `[DONE]`.
 */
import { rejectNeedles } from './answer-options.ts';
import type { ContentFilterRule } from './answer-options.ts';
import type { PreparedPrompt } from './prompt.ts';

const CATEGORIES = ['hate', 'self_harm', 'sexual', 'violence'] as const;

/** Azure's per-category results, `flagged` filtered at `severity`, the others safe. */
export function filterResults(flagged: (typeof CATEGORIES)[number], severity: string): Record<string, unknown> {
  return Object.fromEntries(CATEGORIES.map((c) => [c, c === flagged ? { filtered: true, severity } : { filtered: false, severity: 'safe' }]));
}

/** The rule's string that one of the prompts contains, if any. */
export function filteredBy(rule: ContentFilterRule | null, prompts: readonly PreparedPrompt[]): string | undefined {
  if (!rule) return undefined;
  return rejectNeedles(rule).find((needle) => prompts.some((p) => p.texts.some((t) => t.includes(needle))));
}

/** The fields of a filtered answer (without id, created, model), for a chat completion or one stream chunk. */
export function filteredAnswer(rule: ContentFilterRule, chunk: boolean, promptTokens: number): Record<string, unknown> {
  if (rule.on === 'prompt') {
    return {
      object: chunk ? 'chat.completion.chunk' : 'chat.completion',
      choices: [],
      prompt_filter_results: [{ prompt_index: 0, content_filter_results: filterResults('sexual', 'medium') }],
      ...(chunk ? {} : { usage: { prompt_tokens: promptTokens, completion_tokens: 0, total_tokens: promptTokens } }),
    };
  }
  const message = chunk ? { delta: { content: '' } } : { message: { role: 'assistant', content: null, refusal: null } };
  return {
    object: chunk ? 'chat.completion.chunk' : 'chat.completion',
    choices: [{ index: 0, ...message, finish_reason: 'content_filter', content_filter_results: filterResults('violence', 'high') }],
    ...(chunk ? {} : { usage: { prompt_tokens: promptTokens, completion_tokens: 0, total_tokens: promptTokens } }),
  };
}
