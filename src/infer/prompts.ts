/**
 * What the model is asked. The payload (a page's text layer, a chat chunk) always comes last in
 * the user message, after the instruction: models attend to it best there, and the engine
 * emulator's echo describes the last text part.
 */
import type { ChatMessage } from '../engine/client.ts';

/** Longest text-layer hint sent with a page (characters); longer layers are cut at a line end. */
export const HINT_MAX_CHARS = 12_000;

export const PAGE_INSTRUCTION = [
  'Transcribe this document page to Markdown.',
  'Keep the reading order, headings, lists, tables (as Markdown tables) and formulas (as LaTeX).',
  'Describe figures briefly in italics. Output only the page content, no commentary.',
].join(' ');

const HINT_NOTE =
  "After the image comes the PDF's own text layer for this page: use it for spelling, but it may be incomplete, out of order or wrong, so trust the image.";

export function pageMessages(image: { dataUrl: string }, hint: string): ChatMessage[] {
  const text = cutHint(hint);
  const content: Exclude<ChatMessage['content'], string> = [
    { type: 'text', text: text ? `${PAGE_INSTRUCTION} ${HINT_NOTE}` : PAGE_INSTRUCTION },
    { type: 'image_url', image_url: { url: image.dataUrl } },
  ];
  if (text) content.push({ type: 'text', text });
  return [{ role: 'user', content }];
}

export interface ChunkContext {
  title: string;
  chunk: number;
  chunks: number;
}

export function chunkMessages(chunk: ChunkContext, text: string): ChatMessage[] {
  const part = chunk.chunks > 1 ? `part ${chunk.chunk + 1} of ${chunk.chunks} of ` : '';
  return [
    {
      role: 'system',
      content: 'You write faithful, dense summaries of conversations between a user and an AI assistant. Keep names, numbers, decisions, code identifiers and open questions. Do not invent anything.',
    },
    {
      role: 'user',
      content: [
        { type: 'text', text: `Summarize ${part}the conversation titled ${JSON.stringify(chunk.title)} in a few short paragraphs.` },
        { type: 'text', text },
      ],
    },
  ];
}

function cutHint(hint: string): string {
  const trimmed = hint.trim();
  if (trimmed.length <= HINT_MAX_CHARS) return trimmed;
  const cut = trimmed.lastIndexOf('\n', HINT_MAX_CHARS);
  return trimmed.slice(0, cut > HINT_MAX_CHARS / 2 ? cut : HINT_MAX_CHARS);
}

/** A conversation-level summary made from its chunks' summaries, in order. */
export function reduceMessages(title: string, summaries: Array<string | null>): ChatMessage[] {
  const body = summaries.map((s, i) => `Part ${i + 1} of ${summaries.length}:\n${s ?? '(this part could not be summarized)'}`).join('\n\n');
  return [
    {
      role: 'system',
      content: 'You write faithful, dense summaries of conversations between a user and an AI assistant. Do not invent anything.',
    },
    {
      role: 'user',
      content: [
        { type: 'text', text: `Below are summaries of the consecutive parts of the conversation titled ${JSON.stringify(title)}. Write one summary of the whole conversation.` },
        { type: 'text', text: body },
      ],
    },
  ];
}
