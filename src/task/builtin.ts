/**
 * The built-in tasks, in the same format as users' task files: `transcribe` (a page to
 * Markdown, the default for PDFs and images) and `summarize` (a chat chunk to a summary, the
 * default for exports).
 */
import type { InputKind, Task, TaskUnit } from './types.ts';

export const PAGE_INSTRUCTION = [
  'Transcribe this document page to Markdown.',
  'Keep the reading order, headings, lists, tables (as Markdown tables) and formulas (as LaTeX).',
  'Describe figures briefly in italics. Output only the page content, no commentary.',
].join(' ');

export const TEXT_LAYER_NOTE =
  "After the image comes the PDF's own text layer for this page: use it for spelling, but it may be incomplete, out of order or wrong, so trust the image.";

export const SUMMARY_SYSTEM =
  'You write faithful, dense summaries of conversations between a user and an AI assistant. Keep names, numbers, decisions, code identifiers and open questions. Do not invent anything.';

export const BUILTIN_TASKS: Record<'transcribe' | 'summarize', Task> = {
  transcribe: {
    name: 'transcribe',
    description: 'Each page to Markdown, with the text layer as a spelling hint.',
    unit: 'page',
    prompt: PAGE_INSTRUCTION,
    output: { type: 'text' },
    sampling: { temperature: 0 },
    models: [],
    image: {},
    textLayer: true,
    textLayerNote: TEXT_LAYER_NOTE,
    retries: 3,
    fallback: 'text-layer',
    maxPages: 8,
  },
  summarize: {
    name: 'summarize',
    description: 'Each chunk of a conversation to a faithful summary.',
    unit: 'chunk',
    system: SUMMARY_SYSTEM,
    prompt: 'Summarize {{part}}the conversation titled "{{title}}" in a few short paragraphs.',
    output: { type: 'text' },
    sampling: { temperature: 0 },
    models: [],
    image: {},
    textLayer: true,
    retries: 3,
    fallback: 'none',
    maxPages: 8,
  },
};

export type BuiltinTaskName = keyof typeof BUILTIN_TASKS;

export function isBuiltinTask(name: string): name is BuiltinTaskName {
  return Object.hasOwn(BUILTIN_TASKS, name);
}

/** The task a file of this kind gets when none is named. */
export function defaultTaskFor(kind: InputKind): Task {
  return kind === 'chat' ? BUILTIN_TASKS.summarize : BUILTIN_TASKS.transcribe;
}

/** Which units make sense for which inputs. */
export function unitsFor(kind: InputKind): TaskUnit[] {
  return kind === 'chat' ? ['chunk', 'conversation'] : ['page', 'document'];
}
