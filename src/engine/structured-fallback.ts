/**
 * Structured output for endpoints that do not take `response_format` json_schema, learnt from
 * their 400s (refused-params.ts records what a model was found to take). A request asks in the
 * strongest way the endpoint takes, from this ladder:
 *
 *   json_schema   `response_format: {"type":"json_schema",...}` as the task built it (vLLM, SGLang, OpenAI)
 *   guided_json   vLLM's older extra field `guided_json: <schema>` (vLLM before json_schema; silently
 *                 ignored by vLLM since late 2025, so the schema goes into the prompt as well)
 *   json_object   `response_format: {"type":"json_object"}`, the schema in the prompt (endpoints that
 *                 only take json_object)
 *   prompt        no structured-output field at all, the schema in the prompt (SCHEMA_IN_PROMPT)
 *
 * A refusal of the field a request used moves the model one rung down (a json_object request
 * refused goes straight to `prompt`). An endpoint that takes the field without a word and ignores
 * it (vLLM's guided_json since late 2025, gateways that drop what they do not know) is found by
 * its answers: PROSE_LIMIT answers in a row to structured requests that do not look like JSON at
 * all (`looksLikeJson`) move the model to `prompt`. Weaker rungs are safe: every answer is
 * validated against the task's schema before it counts (src/task/answer.ts).
 *
 * Before any rung: a `strict: true` json_schema refused because the schema is outside the
 * endpoint's strict subset (OpenAI, Azure) goes again without `strict` (`strictRefusal`); a
 * json_object refused because the messages never say JSON (OpenAI, Groq) goes again with the
 * instruction to answer in JSON (`jsonWordRefusal`).
 *
 * The instruction that puts a schema into a prompt is written here, once, for SCHEMA_IN_PROMPT
 * (src/task/request.ts) and for these fallbacks alike.
 */
import { jsonFences } from '../json-errors.ts';
import type { ChatMessage, ContentPart, ResponseFormat } from './types.ts';

export const STRUCTURED_MODES = ['json_schema', 'guided_json', 'json_object', 'prompt'] as const;
export type StructuredMode = (typeof STRUCTURED_MODES)[number];

/** What a model is asked to answer in, said in the log once it is found to need a weaker rung. */
export const MODE_WORDS: Record<StructuredMode, string> = {
  json_schema: 'response_format json_schema',
  guided_json: "vLLM's guided_json field, with the schema in the prompt",
  json_object: 'response_format json_object, with the schema in the prompt',
  prompt: 'the schema in the prompt alone (no structured-output field)',
};

/** The sentence that ends an instruction asking for JSON, for engines that do not constrain decoding to the schema. */
export function schemaInstruction(format: Exclude<ResponseFormat, { type: 'text' }>): string {
  return format.type === 'json_schema'
    ? `Answer with one JSON value and nothing else (no Markdown fence, no comment), valid against this JSON Schema:\n${JSON.stringify(format.json_schema.schema)}`
    : 'Answer with one JSON object and nothing else (no Markdown fence, no comment).';
}

/** Answers in a row, to structured requests of one model, that are not JSON at all before the model is taken to ignore the field. */
export const PROSE_LIMIT = 3;

/**
 * The fences the task checks take a fenced answer by (json-errors.ts), and one still open at the
 * end of the text (an answer cut off inside it).
 */
const FENCED = jsonFences(true);

/** Whether `text` (trimmed) starts like a JSON value, or is one: an object, an array of values (not "[note]"), or anything that parses. */
function startsLikeJson(text: string): boolean {
  if (text.startsWith('{') || /^\[\s*(?:[{["\d\]-]|true|false|null)/.test(text)) return true;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether an answer is in JSON at all, as the task checks would take it (src/task/answer.ts
 * jsonOf): it parses, or starts like an object or an array of values (a JSON answer cut off at
 * max_tokens still does; a reply in prose, even one that opens with "[note]" or "[emulated reply
 * ...", does not), fenced or not, words after it or not; or it is prose around one fenced JSON
 * value ("Here is the JSON:" and a ```json block), cut off inside the fence or not. Such an answer
 * is no sign that the endpoint ignores the structured-output field: the checks take its JSON, so
 * it is neither counted towards PROSE_LIMIT nor thrown away and asked again. JSON that is not
 * fenced after prose, or two fenced values, the checks take none of: those count, as prose does.
 */
export function looksLikeJson(text: string): boolean {
  const trimmed = text.trim();
  // The fence's ends cut off without a regular expression anchored at the end: `\s*```$` is tried
  // at every blank of a run (quadratic: 11 s for a reply with 80 000 blanks in a row).
  let inside = trimmed.replace(/^(?:```|~~~)(?:json[c5]?)?\s*/i, '');
  if (inside.endsWith('```') || inside.endsWith('~~~')) inside = inside.slice(0, -3).trimEnd();
  if (startsLikeJson(inside)) return true;
  const blocks = [...trimmed.matchAll(FENCED)];
  return blocks.length === 1 && startsLikeJson(blocks[0]![2]!.trim());
}

/** The rung a request body asks structured output on; null when it asks none (free text, or the schema already in the prompt). */
export function modeOf(body: Readonly<Record<string, unknown>>): StructuredMode | null {
  if ('guided_json' in body) return 'guided_json';
  const rf = body.response_format as { type?: unknown } | undefined;
  if (rf?.type === 'json_schema') return 'json_schema';
  if (rf?.type === 'json_object') return 'json_object';
  return null;
}

/** The rung a model goes down to after a refusal of `mode`. */
export function nextMode(mode: StructuredMode): StructuredMode {
  // json_object refused: the endpoint takes no response_format at all; a json_schema one would not be taken either.
  if (mode === 'json_object') return 'prompt';
  return STRUCTURED_MODES[Math.min(STRUCTURED_MODES.indexOf(mode) + 1, STRUCTURED_MODES.length - 1)]!;
}

const FIELD: Record<StructuredMode, RegExp> = {
  json_schema: /response_format|json_schema|structured output/i,
  guided_json: /guided_json/i,
  json_object: /response_format|json_object|json mode/i,
  prompt: /(?!)/,
};
/** Words of a refusal: the field (or this value of it) is not taken here. */
const REFUSED = /not (?:be )?supported|unsupported|unknown (?:parameter|field|variant|argument)|unrecognized|not permitted|not allowed|extra (?:inputs|fields)|input should be|invalid (?:value|parameter|type)|unknown variant|expected (?:one of|`)|does not support|not available|not implemented/i;
/** A schema the endpoint's grammar compiler cannot take: the task's schema is the problem, not the field (stays BAD_REQUEST). */
const SCHEMA_PROBLEM = /grammar|failed to (?:transform|convert|compile)|invalid schema|schema is invalid/i;

/**
 * Whether a refusal (400, 422) is of a `strict: true` json_schema, not of the schema or the field
 * (OpenAI, Azure and gateways in front of them take only a subset of JSON Schema in strict mode:
 * "Invalid schema for response_format 'x': In context=(), 'additionalProperties' is required to be
 * supplied and to be false."): the same schema goes again without `strict` (the endpoint's
 * default, false), still json_schema. A schema refused without strict too is the task's problem.
 */
export function strictRefusal(status: number, message: string, body: Readonly<Record<string, unknown>>): boolean {
  if (status !== 400 && status !== 422) return false;
  const format = body.response_format as ResponseFormat | undefined;
  if (format?.type !== 'json_schema' || format.json_schema.strict !== true) return false;
  // Not a grammar compiler's refusal (SCHEMA_PROBLEM): that one refuses the schema in any mode.
  return /\bstrict\b|invalid_json_schema|Invalid schema for response_format/i.test(message) && !/grammar|failed to (?:transform|convert|compile)/i.test(message);
}

/** The body with its json_schema sent without `strict` (a new object when it changes). */
export function withoutStrict(body: Record<string, unknown>): Record<string, unknown> {
  const format = body.response_format as ResponseFormat | undefined;
  if (format?.type !== 'json_schema' || !('strict' in format.json_schema)) return body;
  const { strict: _, ...schema } = format.json_schema;
  return { ...body, response_format: { ...format, json_schema: schema } };
}

/**
 * Whether a refusal is OpenAI's (and Groq's) rule for json_object: "'messages' must contain the
 * word 'json' in some form, to use 'response_format' of type 'json_object'" (a schema-less JSON
 * task whose prompt does not say JSON). The request goes again with the JSON instruction added.
 */
export function jsonWordRefusal(status: number, message: string, body: Readonly<Record<string, unknown>>): boolean {
  return status === 400 && (body.response_format as { type?: unknown } | undefined)?.type === 'json_object' && /must contain the word .?json/i.test(message);
}

/** A json_object request whose messages never say JSON, with the instruction to answer in JSON added (the body as is otherwise). */
export function withJsonWord(body: Record<string, unknown>): Record<string, unknown> {
  if ((body.response_format as { type?: unknown } | undefined)?.type !== 'json_object' || /json/i.test(JSON.stringify(body.messages))) return body;
  return { ...body, messages: withInstruction(body.messages as ChatMessage[], schemaInstruction({ type: 'json_object' })) };
}

/**
 * The rung a refused request falls to, when the refusal (400, 422, 501) says the endpoint does
 * not take the structured-output field the request used; null otherwise.
 */
export function structuredRefusal(status: number, message: string, param: string | undefined, body: Readonly<Record<string, unknown>>): StructuredMode | null {
  if (status !== 400 && status !== 422 && status !== 501) return null;
  const mode = modeOf(body);
  if (mode === null || SCHEMA_PROBLEM.test(message)) return null;
  const named = FIELD[mode].test(message) || (param !== undefined && FIELD[mode].test(param));
  if (!named) return null;
  return status === 501 || REFUSED.test(message) ? nextMode(mode) : null;
}

/**
 * The request body on a rung (a new object; `body` is as the task built it). Only a body whose
 * response_format asks for JSON is changed; a json_object request stays json_object until the
 * endpoint refuses that too.
 */
export function bodyInMode(body: Readonly<Record<string, unknown>>, mode: StructuredMode): Record<string, unknown> {
  const out: Record<string, unknown> = { ...body };
  const format = body.response_format as ResponseFormat | undefined;
  if (mode === 'json_schema' || format === undefined || format.type === 'text') return out;
  if (format.type === 'json_object' && mode !== 'prompt') return out;
  delete out.response_format;
  if (mode === 'guided_json' && format.type === 'json_schema') out.guided_json = format.json_schema.schema;
  if (mode === 'json_object') out.response_format = { type: 'json_object' };
  out.messages = withInstruction(body.messages as ChatMessage[], schemaInstruction(format));
  return out;
}

/** The messages with `instruction` appended to the last user message's first text (a new list; the given one is not changed). */
function withInstruction(messages: ChatMessage[], instruction: string): ChatMessage[] {
  let at = -1;
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]!.role === 'user') {
      at = i;
      break;
    }
  }
  if (at < 0) return [...messages, { role: 'user', content: instruction }];
  const message = messages[at]!;
  let content: string | ContentPart[];
  if (typeof message.content === 'string') content = `${message.content}\n\n${instruction}`;
  else {
    const first = message.content.findIndex((p) => p.type === 'text');
    content =
      first < 0
        ? [{ type: 'text', text: instruction }, ...message.content]
        : message.content.map((p, i) => (i === first && p.type === 'text' ? { type: 'text', text: `${p.text}\n\n${instruction}` } : p));
  }
  return messages.map((m, i) => (i === at ? { ...m, content } : m));
}
