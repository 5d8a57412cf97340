/**
 * A reasoning model's thinking written inline in an answer's `content`, as servers without a
 * reasoning parser send it (vLLM or SGLang without --reasoning-parser, llama.cpp with
 * --reasoning-format none, TGI, older Ollama): `<think>...</think>` before the answer; only
 * `...</think>` when the chat template opened the block in the prompt (DeepSeek-R1, QwQ, Qwen3
 * thinking); Magistral's `[THINK]...[/THINK]`. The answer is what follows the block, split the way
 * vLLM's parsers split it: the reasoning is at the start and ends at the first closing tag. A
 * block opened and never closed (the thinking ran into max_tokens) leaves no answer.
 *
 * vLLM splits a headless `...</think>` only because the operator chose a reasoning parser for a
 * thinking model; here nothing says the model thinks, and a model that merely writes the tag (a
 * page about it, JSON holding it in a string, a code sample) must keep its answer whole. So a
 * headless closing tag counts only as such templates make it end the thinking: alone on its line
 * (a line break or the start before it, a line break or the end after it), outside a code fence.
 * A JSON string cannot hold a line break, so a tag inside one never counts. Tags anywhere else
 * (a block not at the start) are text and left alone.
 */

const TAGS = [
  { open: '<think>', close: '</think>' },
  { open: '[THINK]', close: '[/THINK]' },
] as const;

/** Whether the headless closing tag at `end` of `text` stands alone on its line, outside a code fence. */
function endsLeadingThinking(text: string, end: number, close: string): boolean {
  const before = text.slice(0, end);
  const after = text.slice(end + close.length);
  if (!/(?:^|\n)[ \t]*$/.test(before) || !/^[ \t]*(?:\r?\n|$)/.test(after)) return false;
  return (before.match(/^[ \t]*(?:```|~~~)/gm)?.length ?? 0) % 2 === 0;
}

/** The answer and the thinking before it; null when `content` has no inline reasoning. */
export function splitInlineReasoning(content: string): { answer: string; reasoning: string } | null {
  const start = content.trimStart();
  for (const { open, close } of TAGS) {
    const opened = start.startsWith(open);
    const end = start.indexOf(close);
    // Opened in the prompt: a closing tag with no opening one before it, where thinking ends.
    const openedBefore = !opened && end >= 0 && !start.slice(0, end).includes(open) && endsLeadingThinking(start, end, close);
    if (!opened && !openedBefore) continue;
    const from = opened ? open.length : 0;
    if (end < from) return { answer: '', reasoning: start.slice(from).trim() };
    return { answer: start.slice(end + close.length).trimStart(), reasoning: start.slice(from, end).trim() };
  }
  return null;
}
