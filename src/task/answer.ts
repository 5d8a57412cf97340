/**
 * What counts as an answer. Pure: an engine's reply (text and finish_reason) and the task in, a
 * verdict out. Not an answer: empty text, a reply cut off at max_tokens (finish_reason `length`),
 * a degenerate repetition loop (at the end of the text: a short block repeated until it was cut
 * off, or repeated at length), and for JSON tasks invalid JSON or a value that breaks the schema. The worker retries those at a rising temperature (temperatureFor), as olmOCR does
 * across its attempts, before the unit fails with the code.
 */
import { endOfFirstValue, jsonFences } from '../json-errors.ts';
import { schemaViolations } from './schema.ts';
import type { Task } from './types.ts';

export type Verdict =
  | { ok: true; text: string; data?: unknown }
  | { ok: false; code: 'EMPTY_OUTPUT' | 'OUTPUT_TRUNCATED' | 'OUTPUT_REPETITIVE' | 'OUTPUT_INVALID'; message: string };

export interface Reply {
  text: string;
  finishReason: string | null;
  /** Set when the model wrote only reasoning (`reasoning_content`) and no answer: its length. */
  reasoningChars?: number;
}

/**
 * A loop at the end of the text: the smallest period p (≤ 400 chars) whose repetition covers the
 * tail, with how many times it repeats and how many characters it covers; null when there is none.
 */
export function tailLoop(text: string, minCover = 200, minRepeats = 6): { period: number; repeats: number; cover: number } | null {
  const t = text.length > 8000 ? text.slice(-8000) : text;
  const n = t.length;
  for (let p = 1; p <= Math.min(400, Math.floor(n / minRepeats)); p++) {
    let i = n - 1;
    while (i - p >= 0 && t.charCodeAt(i) === t.charCodeAt(i - p)) i--;
    const cover = n - 1 - i + p; // the block plus its copies
    if (cover >= minCover && cover / p >= minRepeats && /\S/.test(t.slice(n - p))) {
      return { period: p, repeats: Math.floor(cover / p), cover };
    }
  }
  return null;
}

/** A Markdown code fence around a JSON answer, closed (json-errors.ts). */
const FENCED_BLOCK = jsonFences();

/**
 * The JSON in a reply: the whole text, or the inside of one ```json fence around it, or of the
 * one fence in a reply that says something before or after it ("Here is the JSON:", a note), or
 * an object or array followed by a note: what a model asked with the schema in the prompt (no
 * structured output) writes, try after try. Two fences, or two values, are two answers: none is
 * taken. Throws JSON.parse's error for the text otherwise.
 */
export function jsonOf(text: string): unknown {
  const trimmed = text.trim();
  const fenced = /^```(?:json)?\s*\n([\s\S]*?)\n?```$/i.exec(trimmed);
  if (fenced) return JSON.parse(fenced[1]!);
  try {
    return JSON.parse(trimmed);
  } catch (err) {
    const blocks = [...trimmed.matchAll(FENCED_BLOCK)];
    if (blocks.length === 1) return JSON.parse(blocks[0]![2]!);
    const end = blocks.length === 0 ? endOfFirstValue(trimmed) : null;
    // An object or array followed by words ("Note: ..."), not by another value, nor by JSON's
    // own punctuation (', "total": 3}': an object closed too early, whose later fields would be lost).
    if (end !== null && !/^[[{"\d\-,:}\]]/.test(trimmed.slice(end).trim())) return JSON.parse(trimmed.slice(0, end));
    throw err;
  }
}

export function checkAnswer(task: Task, reply: Reply): Verdict {
  const text = reply.text.trim();
  // A reply cut off at max_tokens is judged a loop at a low bar: the loop is why it ran on. A
  // reply that ended by itself must repeat far more: blank table rows and leader dots are real.
  const cut = reply.finishReason === 'length';
  const loop = tailLoop(text, cut ? 200 : 2000, cut ? 6 : 20);
  if (reply.finishReason === 'repetition' || loop) {
    const what = loop ? `the last ${loop.cover} characters repeat a ${loop.period}-character phrase ${loop.repeats} times` : 'the engine stopped it for repetition';
    return { ok: false, code: 'OUTPUT_REPETITIVE', message: `the answer degenerated into a loop (${what})` };
  }
  // A reasoning model whose thinking took the room: say so, or "no text" misleads.
  const thought = text === '' && reply.reasoningChars
    ? `; the model wrote only reasoning (${reply.reasoningChars} characters in reasoning_content, none in content): raise max_tokens, or turn its thinking off`
    : '';
  if (reply.finishReason === 'length') {
    return { ok: false, code: 'OUTPUT_TRUNCATED', message: `the answer was cut off at max_tokens (finish_reason length, ${text.length} characters)${thought}` };
  }
  if (text === '') return { ok: false, code: 'EMPTY_OUTPUT', message: `the engine answered with no text (finish_reason ${reply.finishReason ?? 'unknown'})${thought}` };
  if (task.output.type === 'json') {
    let data: unknown;
    try {
      data = jsonOf(text);
    } catch (err) {
      return { ok: false, code: 'OUTPUT_INVALID', message: `the answer is not valid JSON: ${(err as Error).message}` };
    }
    const schemaless = Object.keys(task.output.schema).length === 0;
    // Without a schema the request asks for a JSON object (response_format json_object): a bare
    // string, number, array or null is not one.
    if (schemaless && (typeof data !== 'object' || data === null || Array.isArray(data))) {
      return { ok: false, code: 'OUTPUT_INVALID', message: `the answer is JSON but not an object (${data === null ? 'null' : Array.isArray(data) ? 'an array' : `a ${typeof data}`}); the task asks for a JSON object` };
    }
    const violations = schemaless ? null : schemaViolations(task.output.schema, data);
    if (violations) return { ok: false, code: 'OUTPUT_INVALID', message: `the answer breaks the schema: ${violations}` };
    return { ok: true, text, data };
  }
  const body = unwrapMarkdown(text);
  if (body === '') return { ok: false, code: 'EMPTY_OUTPUT', message: 'the engine answered with an empty ```markdown block' };
  return { ok: true, text: body };
}

/**
 * A text answer that is one ```markdown (or md) fence from start to end: the model's way of
 * saying "Markdown follows" (Qwen2-VL and others do so, asked for Markdown), not a code block;
 * kept as it was, every page of X.md would show as code. The inside, fences within it kept.
 * An untagged fence is left alone: a page that is a code listing.
 */
export function unwrapMarkdown(text: string): string {
  // Blanks before the closing fence as in FENCED_BLOCK (linear in a run of spaces).
  const m = /^(`{3,}|~{3,})[ \t]*(?:markdown|md)[ \t]*\n([\s\S]*?)(?:\n[ \t]*|[ \t]{0,3})\1[ \t]*$/i.exec(text);
  return m && fencesClose(m[2]!) ? m[2]!.trim() : text;
}

/**
 * Whether every fence opened in `text` is closed in it (a closing fence: the opener's character,
 * at least as many, nothing after). False for the inside of '```markdown A ``` words ```markdown B ```':
 * two blocks with words between, not one wrapper.
 */
function fencesClose(text: string): boolean {
  let open: string | null = null;
  for (const line of text.split('\n')) {
    const fence = /^[ \t]{0,3}(`{3,}|~{3,})(.*)$/.exec(line);
    if (!fence) continue;
    if (open === null) open = fence[1]!;
    else if (fence[1]![0] === open[0] && fence[1]!.length >= open.length && fence[2]!.trim() === '') open = null;
  }
  return open === null;
}

/** The temperature of try `k` (0-based): the task's own first, then +0.2 per retry, at most 1 (or the task's own if higher). */
export function temperatureFor(task: Task, k: number): number {
  const base = task.sampling.temperature;
  if (k === 0) return base;
  return Math.round(Math.min(Math.max(1, base), Math.max(base, 0.1) + 0.2 * k) * 100) / 100;
}
