/**
 * A task and one unit's payload → the chat request the engine gets. Pure. The payload (a page's
 * text layer, a chunk's text) comes last in the user message, after the instruction and the
 * images, unless the prompt places it with {{text}}: models attend to it best there, and the
 * engine emulator's echo describes the last text part. Page images are base64 data URLs the
 * worker rendered itself, never URLs from a job.
 *
 * A JSON task asks for structured output the way vLLM's OpenAI-compatible server takes it:
 * `response_format` json_schema (strict), or json_object without a schema. For engines without
 * structured output (`schemaInPrompt`, the worker's SCHEMA_IN_PROMPT), no `response_format` is
 * sent (such servers refuse or ignore it) and the schema goes into the prompt instead; the
 * answer is validated against the schema either way (answer.ts). Without it, an endpoint that
 * refuses json_schema is asked the next way it takes, by the engine client
 * (src/engine/structured-fallback.ts, which words the schema instruction for both).
 */
import type { DataUrl } from '../engine/data-url.ts';
import { schemaInstruction } from '../engine/structured-fallback.ts';
import type { ChatMessage, ContentPart, ResponseFormat } from '../engine/types.ts';
import { BUILTIN_TASKS } from './builtin.ts';
import { render, usesVariable, type Variables } from './template.ts';
import type { Task } from './types.ts';

/** Longest text-layer hint sent with a page (characters); longer layers are cut at a line end. */
export const HINT_MAX_CHARS = 12_000;

export interface PageImage {
  page: number;
  dataUrl: string | DataUrl;
  /** The page's text layer ('' when it has none). */
  text: string;
}

export type Payload =
  | { kind: 'page'; file: string; pages: number; image: PageImage }
  | { kind: 'document'; file: string; pages: number; images: PageImage[] }
  | { kind: 'chunk'; file: string; title: string; conversationId: string; chunk: number; chunks: number; text: string }
  /** A conversation's answer made from its parts' summaries (long conversations, `conversation` unit or --conversation-summary). */
  | { kind: 'reduce'; file: string; title: string; conversationId: string; parts: Array<string | null> };

export interface BuiltRequest {
  messages: ChatMessage[];
  responseFormat?: ResponseFormat;
  /** The task's max_tokens, when it sets one (else the worker's default for the kind). */
  maxTokens?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
}

export function cutHint(hint: string): string {
  const trimmed = hint.trim();
  if (trimmed.length <= HINT_MAX_CHARS) return trimmed;
  const cut = trimmed.lastIndexOf('\n', HINT_MAX_CHARS);
  return trimmed.slice(0, cut > HINT_MAX_CHARS / 2 ? cut : HINT_MAX_CHARS);
}

function responseFormatOf(task: Task): ResponseFormat | undefined {
  if (task.output.type !== 'json') return undefined;
  if (Object.keys(task.output.schema).length === 0) return { type: 'json_object' };
  return { type: 'json_schema', json_schema: { name: task.output.name, schema: task.output.schema, strict: true } };
}

/**
 * The request for one unit. `mapStep`: a chunk of a long conversation under a `conversation`
 * task is first summarized with the built-in summarize task; the task itself answers the reduce.
 */
export function buildRequest(task: Task, payload: Payload, options: { mapStep?: boolean; schemaInPrompt?: boolean } = {}): BuiltRequest {
  const effective = options.mapStep ? BUILTIN_TASKS.summarize : task;
  const vars: Variables = { file: payload.file };
  let payloadText = '';
  const images: ContentPart[] = [];
  let preface = '';
  switch (payload.kind) {
    case 'page': {
      Object.assign(vars, { page: payload.image.page, pages: payload.pages });
      images.push({ type: 'image_url', image_url: { url: payload.image.dataUrl } });
      payloadText = effective.textLayer ? cutHint(payload.image.text) : '';
      break;
    }
    case 'document': {
      vars.pages = payload.pages;
      for (const image of payload.images) images.push({ type: 'image_url', image_url: { url: image.dataUrl } });
      if (effective.textLayer) {
        const per = Math.floor(HINT_MAX_CHARS / Math.max(1, payload.images.length));
        payloadText = payload.images
          .map((image) => ({ page: image.page, text: cutHint(image.text).slice(0, per) }))
          .filter((p) => p.text)
          .map((p) => `Page ${p.page}:\n${p.text}`)
          .join('\n\n');
      }
      break;
    }
    case 'chunk': {
      Object.assign(vars, {
        title: payload.title,
        conversation_id: payload.conversationId,
        chunk: payload.chunk + 1,
        chunks: payload.chunks,
        part: payload.chunks > 1 ? `part ${payload.chunk + 1} of ${payload.chunks} of ` : '',
      });
      payloadText = payload.text;
      break;
    }
    case 'reduce': {
      Object.assign(vars, { title: payload.title, conversation_id: payload.conversationId, chunks: payload.parts.length });
      payloadText = payload.parts.map((s, i) => `Part ${i + 1} of ${payload.parts.length}:\n${s ?? '(this part could not be summarized)'}`).join('\n\n');
      preface = `Below are summaries of the consecutive parts of the conversation titled ${JSON.stringify(payload.title)}. `;
      break;
    }
  }
  vars.text = payloadText;
  const inline = usesVariable(effective.prompt, 'text');
  const reduceDefault = payload.kind === 'reduce' && effective === BUILTIN_TASKS.summarize;
  let instruction = reduceDefault ? `${preface}Write one summary of the whole conversation.` : `${preface}${render(effective.prompt, vars)}`;
  const attachText = !inline && payloadText !== '';
  if (attachText && images.length > 0 && effective.textLayerNote) instruction = `${instruction} ${effective.textLayerNote}`;
  let format = options.mapStep ? undefined : responseFormatOf(task);
  if (format && format.type !== 'text' && options.schemaInPrompt) {
    instruction = `${instruction}\n\n${schemaInstruction(format)}`;
    format = undefined;
  }
  const content: ContentPart[] = [{ type: 'text', text: instruction }, ...images];
  if (attachText) content.push({ type: 'text', text: payloadText });
  const messages: ChatMessage[] = [];
  if (effective.system) messages.push({ role: 'system', content: render(effective.system, vars) });
  messages.push({ role: 'user', content });
  const s = effective.sampling;
  return {
    messages,
    ...(format ? { responseFormat: format } : {}),
    ...(s.maxTokens !== undefined ? { maxTokens: s.maxTokens } : {}),
    ...(s.topP !== undefined ? { topP: s.topP } : {}),
    ...(s.seed !== undefined ? { seed: s.seed } : {}),
    ...(s.stop !== undefined ? { stop: s.stop } : {}),
  };
}
