/**
 * A prompt the server cut to its context without a word. Ollama's OpenAI-compatible endpoint does
 * not refuse a prompt longer than the model's context (num_ctx, OLLAMA_CONTEXT_LENGTH: 2048 or
 * 4096 by default): it keeps the first few tokens and the tail, answers 200 about what it kept,
 * and reports `usage.prompt_tokens` equal to that context. Such an answer is about a part of
 * the page or chat, so it is no answer: it becomes the refusal vLLM would have sent
 * (CONTEXT_TOO_LONG, the context and our count of the prompt), which renders a page unit smaller
 * (render-ladder.ts) and fails the unit at the last size.
 *
 * The sign: the prompt tokens reported equal the context length, while our own estimate of the
 * prompt is well over it. The context length is the engine's (`max_model_len`), else what the
 * server holds the model at natively (Ollama's /api/ps, asked only when an answer looks cut);
 * an Ollama too old to say it (no context_length there) is read by a reported count that is a
 * power of two of 1024 or more (the contexts it defaults to) and at most two thirds of our
 * estimate. A server that lists no context and is no Ollama is not judged: nothing known of it
 * cuts prompts, and its counts of images differ from ours (OpenAI's tiles).
 */
import { EngineError } from '../engine/classify.ts';
import type { ChatUsage } from '../engine/types.ts';

/** Our estimate must be over the context by this much: it is rough (images especially). */
const OVER_KNOWN = 1.1;
/** With no context length known, the estimate must be this far over the count reported. */
const OVER_GUESSED = 1.5;

/** Whether an answer whose prompt count is `reported` may have had its prompt cut (worth asking the server's context). */
export function looksCut(reported: number | null, estimate: number): reported is number {
  return reported !== null && reported > 0 && estimate > reported * OVER_KNOWN;
}

/** Whether the prompt was cut to `context` (null: not known). */
export function promptWasCut(reported: number | null, estimate: number, context: number | null): boolean {
  if (!looksCut(reported, estimate)) return false;
  if (context !== null) return reported >= context;
  return reported >= 1024 && (reported & (reported - 1)) === 0 && estimate >= reported * OVER_GUESSED;
}

/** The refusal the server did not send: CONTEXT_TOO_LONG with the context and our count of the prompt, the answer's usage kept (its tokens were spent). */
export function cutPromptError(usage: ChatUsage, estimate: number, context: number | null, maxTokens: number): EngineError {
  const reported = usage.promptTokens ?? 0;
  const limit = context ?? reported;
  return new EngineError(
    'CONTEXT_TOO_LONG',
    `the engine answered although the prompt (about ${estimate} tokens by docbatch's count) is longer than its context: it reports prompt_tokens ${reported}, ${context !== null ? 'its context length' : 'a context-sized count'}, so it cut the prompt to fit and answered about a part of it (Ollama does this without an error). Raise the server's context (Ollama: OLLAMA_CONTEXT_LENGTH or the model's num_ctx) or send less (IMAGE_SIZE, CHUNK_TOKENS)`,
    { status: 200, usage, context: { maxContextLength: limit, promptTokens: estimate, maxTokens } },
  );
}
