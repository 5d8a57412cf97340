/**
 * A reasoning model's thinking written inline in an answer's `content`, as servers without a
 * reasoning parser send it (vLLM or SGLang without --reasoning-parser, llama.cpp with
 * --reasoning-format none, TGI, older Ollama): `<think>...</think>` before the answer; only
 * `...</think>` when the chat template opened the block in the prompt (DeepSeek-R1, QwQ, Qwen3);
 * Magistral's `[THINK]...[/THINK]`. The answer is what follows the block, split the way vLLM's
 * parser would have split it (reasoning before the first closing tag). A block opened and never
 * closed (the thinking ran into max_tokens) leaves no answer. Tags anywhere else (a page about
 * them, a block not at the start) are text and left alone.
 */

const TAGS = [
  { open: '<think>', close: '</think>' },
  { open: '[THINK]', close: '[/THINK]' },
] as const;

/** The answer and the thinking before it; null when `content` has no inline reasoning. */
export function splitInlineReasoning(content: string): { answer: string; reasoning: string } | null {
  const start = content.trimStart();
  for (const { open, close } of TAGS) {
    const opened = start.startsWith(open);
    const end = start.indexOf(close);
    // Opened in the prompt: a closing tag with no opening one before it.
    const openedBefore = !opened && end >= 0 && !start.slice(0, end).includes(open);
    if (!opened && !openedBefore) continue;
    const from = opened ? open.length : 0;
    if (end < from) return { answer: '', reasoning: start.slice(from).trim() };
    return { answer: start.slice(end + close.length).trimStart(), reasoning: start.slice(from, end).trim() };
  }
  return null;
}
