/**
 * A finished document → its main output, in unit order, from the results in Redis:
 *
 *   pages, text task      `X.md`: `<!-- page N -->` then the model's text, or
 *                         `<!-- page N failed: CODE: message -->`; a page whose answers were all
 *                         rejected and that fell back to its text layer is marked so; a code
 *                         fence or raw HTML block a page left open is closed at its end
 *                         (closeOpenBlocks)
 *   pages, JSON task      `X.jsonl`: `{"page": N, "data": ...}` or `{"page": N, "error": {...}}`
 *   document, text task   `X.md`: the answer
 *   document, JSON task   `X.json`: the validated value (none when the unit failed: an X.json
 *                         of an earlier run of the document is removed)
 *   chat exports          `X.jsonl` (chat.ts)
 *
 * Everything comes from Redis and the blob store, never from the clock, so writing a document
 * twice gives identical bytes.
 */
import type { DocStore } from '../store/docs.ts';
import type { DocRecord, UnitResult, UnitResultOk } from '../store/types.ts';
import type { OutputSink } from './atomic.ts';
import { jsonlLine } from '../jsonl.ts';
import { usageJson } from '../usage.ts';

export interface UnitFailure {
  unit: number;
  code: string;
  message: string;
  page?: number;
  conversation_id?: string;
  /** The chunk, or 'summary' for a conversation's summary. */
  chunk?: number | 'summary';
}

/** What assembling saw, for the report. */
export interface Tally {
  completed: number;
  failures: UnitFailure[];
  models: Set<string>;
  engines: Map<string, number>;
  renderers: Map<string, number>;
  /** Units whose page the fallback renderer drew (the default one failed on it). */
  rendererFallbacks: number[];
  /** Rejected answers by code (each later asked again). */
  retries: Map<string, number>;
  /** Units answered from their own text layer. */
  fallbacks: number[];
}

export interface Assembled {
  /** The main output, or null when there is none (a JSON document whose unit failed). */
  file: string | null;
  tally: Tally;
}

export function newTally(): Tally {
  return { completed: 0, failures: [], models: new Set(), engines: new Map(), renderers: new Map(), rendererFallbacks: [], retries: new Map(), fallbacks: [] };
}

/** Counts one unit's result into the tally (the failure entry is the caller's: it knows the place). */
export function count(tally: Tally, unit: number, r: UnitResult): void {
  for (const code of r.retried ?? []) tally.retries.set(code, (tally.retries.get(code) ?? 0) + 1);
  // A page drawn counts as drawn whether or not its answer then came.
  if (r.renderer) tally.renderers.set(r.renderer, (tally.renderers.get(r.renderer) ?? 0) + 1);
  if (r.rendererFallback) tally.rendererFallbacks.push(unit);
  if (!r.ok) return;
  tally.completed++;
  if (r.fallback) tally.fallbacks.push(unit);
  else tally.models.add(r.model);
  if (r.engine) tally.engines.set(r.engine, (tally.engines.get(r.engine) ?? 0) + 1);
}

/** Model output is untrusted text: it must not be able to forge or close our page markers. */
export function escapePageText(text: string): string {
  return text.replace(/<!--/g, '&lt;!--');
}

/**
 * A page's text with a block it left open closed at its end, so that the pages after it in X.md
 * are not swallowed by it in a Markdown viewer (CommonMark's rules):
 *
 * - a code fence: 3 or more backticks or tildes indented at most 3 spaces (a backtick fence's
 *   info string holds no backtick), closed by a line of the same character, at least as long,
 *   and nothing else. The closing line added is the opening one's indentation, character and
 *   length (so a fence opened in a list item's text is closed inside that item);
 * - a raw HTML block that runs past blank lines and page marks (CommonMark's types 1, 3, 4 and 5;
 *   type 2, `<!--`, never opens: escapePageText breaks it): one opened at a line's start by
 *   `<pre`, `<script`, `<style` or `<textarea` ends at a line holding its closing tag; by `<?`, at
 *   `?>`; by `<!` and a letter (`<!DOCTYPE`), at `>`; by `<![CDATA[`, at `]]>`. What ends it is
 *   added on a line of its own. test/write/markdown-commonmark.test.ts holds X.md to
 *   commonmark.js, the reference parser.
 *
 * Blocks opened on a list item's or block quote's own line end with them, so are not looked into.
 */
export function closeOpenBlocks(text: string): string {
  let open: { kind: 'fence'; indent: string; fence: string } | { kind: 'html'; end: RegExp; close: string } | null = null;
  for (const line of text.split('\n')) {
    if (open?.kind === 'html') {
      if (open.end.test(line)) open = null;
      continue;
    }
    const m = /^( {0,3})(`{3,}|~{3,})(.*)$/.exec(line);
    if (open) {
      if (m && m[2]![0] === open.fence[0] && m[2]!.length >= open.fence.length && m[3]!.trim() === '') open = null;
      continue;
    }
    if (m && !(m[2]![0] === '`' && m[3]!.includes('`'))) {
      open = { kind: 'fence', indent: m[1]!, fence: m[2]! };
      continue;
    }
    for (const block of HTML_BLOCKS) {
      const start = block.start.exec(line);
      if (!start) continue;
      if (!block.end.test(line.slice(start[0].length))) open = { kind: 'html', end: block.end, close: block.close(start) };
      break;
    }
  }
  if (open === null) return text;
  return open.kind === 'fence' ? `${text}\n${open.indent}${open.fence}` : `${text}\n${open.close}`;
}

/** CommonMark's HTML blocks that blank lines do not end (types 1, 3, 4, 5): start, end, what closes one. */
const HTML_BLOCKS: ReadonlyArray<{ start: RegExp; end: RegExp; close: (start: RegExpExecArray) => string }> = [
  { start: /^ {0,3}<(pre|script|style|textarea)(?=[\s>]|$)/i, end: /<\/(?:pre|script|style|textarea)>/i, close: (m) => `</${m[1]!.toLowerCase()}>` },
  { start: /^ {0,3}<\?/, end: /\?>/, close: () => '?>' },
  { start: /^ {0,3}<!\[CDATA\[/, end: /\]\]>/, close: () => ']]>' },
  { start: /^ {0,3}<![A-Za-z]/, end: />/, close: () => '>' },
];

/** A failure message inside an HTML comment: no `--`, one line. */
export function commentSafe(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/-{2,}/g, '—').trim();
}

export function missing(): UnitResult {
  return { ok: false, code: 'UNIT_LOST', message: 'no result was recorded for this unit' };
}

/** Pages (or a whole document) of a PDF or image → its main output. */
export async function writePages(record: DocRecord, store: DocStore, sink: OutputSink, base: string): Promise<Assembled> {
  const { meta } = record;
  const json = meta.task.output === 'json';
  const tally = newTally();
  if (meta.task.unit === 'document') {
    const [, result] = (await store.results(record.docId, record.gen, 1).next()).value ?? [0, null];
    const r = result ?? missing();
    count(tally, 0, r);
    if (!r.ok) {
      tally.failures.push({ unit: 0, code: r.code, message: r.message });
      // No X.json this time: one an earlier run of this document wrote (the name is this
      // document's) would otherwise stand beside a report saying the unit failed.
      if (json) {
        await sink.remove(`${base}.json`);
        return { file: null, tally };
      }
      return { file: await sink.writeWhole(`${base}.md`, `<!-- document failed: ${r.code}: ${commentSafe(r.message)} -->\n`), tally };
    }
    if (json) return { file: await sink.writeWhole(`${base}.json`, `${JSON.stringify(r.data, null, 2)}\n`), tally };
    return { file: await sink.writeWhole(`${base}.md`, `${escapePageText(r.text).trimEnd()}\n`), tally };
  }
  const path = `${base}.${json ? 'jsonl' : 'md'}`;
  const file = await sink.writeStream(path, async (write) => {
    for await (const [unit, result] of store.results(record.docId, record.gen, record.units)) {
      const page = unit + 1;
      const r = result ?? missing();
      count(tally, unit, r);
      if (!r.ok) tally.failures.push({ unit, page, code: r.code, message: r.message });
      await write(json ? pageLine(page, r) : pageBlock(page, r));
    }
  });
  return { file, tally };
}

/** One page of X.md: its mark, then its text with any block it left open closed (closeOpenBlocks). */
export function pageBlock(page: number, r: UnitResult): string {
  if (!r.ok) return `<!-- page ${page} failed: ${r.code}: ${commentSafe(r.message)} -->\n\n`;
  const note = r.fallback ? `<!-- page ${page} fallback: text layer (every answer was rejected: ${commentSafe((r.retried ?? []).join(', '))}) -->\n` : '';
  return `<!-- page ${page} -->\n${note}${closeOpenBlocks(escapePageText(r.text).trimEnd())}\n\n`;
}

function pageLine(page: number, r: UnitResult): string {
  if (!r.ok) return jsonlLine({ page, error: { code: r.code, message: r.message } });
  return jsonlLine({ page, data: (r as UnitResultOk).data ?? null, model: r.model, finish_reason: r.finishReason, usage: usageJson(r) });
}
