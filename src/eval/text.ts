/**
 * Text against text: page markers, character and word error rates, similarity. Pure.
 *
 * Both texts are normalised first (normalise.ts: NFKC, whitespace runs → one space, trimmed,
 * case-insensitive unless asked). Characters are Unicode code points; words are what lies between
 * spaces (punctuation stays part of its word).
 *   CER = character edit distance / characters of the truth
 *   WER = word edit distance / words of the truth
 * A document's or a model's rate is the sum of edits over the sum of truth lengths (pages and
 * documents weigh by their length, not one each). Rates can exceed 1 (an output longer than the
 * truth). A rate over nothing (a blank truth) is null.
 *
 * Pages: `<!-- page N -->` starts page N (spacing and case as typed by hand: `<!--Page 2-->`), `<!-- page N failed: CODE: message -->` is page N that
 * failed (no text). The writer's other comments are not text: a note under a marker (`<!-- page N
 * fallback: text layer (...) -->`) is left out, and a file that is only `<!-- document failed:
 * CODE: message -->` (a document-unit text task whose unit failed) is a failed text. When the truth and the output both have markers, each truth page is scored
 * against the output's page of the same number (a missing or failed page is all deletions) and
 * output pages the truth has not are left out; otherwise the whole texts are compared, markers
 * removed. Text before the first marker is not part of any page.
 */
import { anchoredDistance, EXACT_BUDGET, type Token } from './align.ts';
import { normaliseText } from './normalise.ts';

export interface PageText {
  page: number;
  text: string;
  failed?: { code: string; message: string };
}

export interface MarkedText {
  /** The pages in file order, or null when the text has no page marker. */
  pages: PageText[] | null;
  /** All the text without markers (failed pages contribute nothing). */
  text: string;
  /** The whole text failed (`<!-- document failed: CODE: message -->`); `text` is then empty. */
  failed?: { code: string; message: string };
}

export interface TextCounts {
  chars: number;
  char_edits: number;
  words: number;
  word_edits: number;
  /** False when a distance came from patience anchoring (align.ts): then it is an upper bound. */
  exact: boolean;
}

export interface PageScore extends TextCounts {
  page: number;
  cer: number | null;
  wer: number | null;
  /** `missing`: the output has no such page; `failed`: the output's page failed (code given). */
  status: 'scored' | 'missing' | 'failed';
  code?: string;
}

export interface TextScore extends TextCounts {
  cer: number | null;
  wer: number | null;
  /** Per truth page when both texts have page markers, else null. */
  pages: PageScore[] | null;
  /** Output pages that the truth has not (not scored). */
  unscored_pages: number[];
}

/** The writer's marker, and one typed by hand (`<!--page 3-->`, `<!-- Page 3 -->`, indented). */
const MARKER = /^\s*<!--\s*page\s+(\d+)(?:\s+failed:\s*([A-Za-z0-9_]+):?\s*(.*?))?\s*-->\s*$/i;
/** A note the writer puts under a page's marker (`<!-- page 3 fallback: text layer (...) -->`). */
const NOTE = /^\s*<!--\s*page\s+\d+\s+[a-z]+:.*-->\s*$/i;
/** All that the writer puts in X.md when a document-unit text task failed. */
const DOCUMENT_FAILED = /^<!-- document failed: ([A-Za-z0-9_]+):? ?(.*?) -->\s*$/;

export function parseMarkedText(md: string): MarkedText {
  const whole = DOCUMENT_FAILED.exec(md);
  if (whole) return { pages: null, text: '', failed: { code: whole[1]!, message: whole[2] ?? '' } };
  const pages: PageText[] = [];
  const preamble: string[] = [];
  let current: { page: PageText; lines: string[] } | null = null;
  const close = () => {
    if (current) current.page.text = current.lines.join('\n');
  };
  for (const line of md.split(/\r?\n/)) {
    const m = MARKER.exec(line);
    if (!m && current && NOTE.test(line)) continue;
    if (!m) {
      (current ? current.lines : preamble).push(line);
      continue;
    }
    close();
    const page: PageText = { page: Number(m[1]), text: '' };
    if (m[2] !== undefined) page.failed = { code: m[2], message: m[3] ?? '' };
    pages.push(page);
    current = { page, lines: [] };
  }
  close();
  if (pages.length === 0) return { pages: null, text: md };
  return { pages, text: pages.map((p) => p.text).join('\n') };
}

/** Edit counts of `output` against `truth` (both raw; normalised here). */
export function textCounts(truth: string, output: string, caseSensitive = false, budget = EXACT_BUDGET): TextCounts {
  const words = new Map<string, number>();
  const t = tokenise(normaliseText(truth, caseSensitive), words);
  const o = tokenise(normaliseText(output, caseSensitive), words);
  const chars = anchoredDistance(t.chars, o.chars, t.spans, o.spans, budget);
  const wordTokens = (ids: Int32Array): Token[] => Array.from(ids, (key, i) => ({ key, start: i, end: i + 1 }));
  const wordsD = anchoredDistance(t.words, o.words, wordTokens(t.words), wordTokens(o.words), budget);
  return { chars: t.chars.length, char_edits: chars.distance, words: t.words.length, word_edits: wordsD.distance, exact: chars.exact && wordsD.exact };
}

/** 1 − character edit distance / the longer length, on normalised text; 1 for two blank texts. */
export function similarity(a: string, b: string, caseSensitive = false, budget = EXACT_BUDGET): number {
  const words = new Map<string, number>();
  const x = tokenise(normaliseText(a, caseSensitive), words);
  const y = tokenise(normaliseText(b, caseSensitive), words);
  const longer = Math.max(x.chars.length, y.chars.length);
  if (longer === 0) return 1;
  return 1 - anchoredDistance(x.chars, y.chars, x.spans, y.spans, budget).distance / longer;
}

export function ratio(edits: number, total: number): number | null {
  return total > 0 ? edits / total : null;
}

/** Scores an output text (null: no output at all) against a truth text. */
export function scoreText(truth: MarkedText, output: MarkedText | null, caseSensitive = false, budget = EXACT_BUDGET): TextScore {
  if (truth.pages && (output === null || output.pages)) {
    const byNumber = new Map<number, PageText>();
    for (const p of output?.pages ?? []) if (!byNumber.has(p.page)) byNumber.set(p.page, p);
    const truthPages = new Set(truth.pages.map((p) => p.page));
    const pages = truth.pages.map((tp): PageScore => {
      const op = byNumber.get(tp.page);
      const counts = textCounts(tp.text, op && !op.failed ? op.text : '', caseSensitive, budget);
      const score: PageScore = { page: tp.page, ...counts, cer: ratio(counts.char_edits, counts.chars), wer: ratio(counts.word_edits, counts.words), status: !op ? 'missing' : op.failed ? 'failed' : 'scored' };
      if (op?.failed) score.code = op.failed.code;
      return score;
    });
    const total = sum(pages);
    const unscored = (output?.pages ?? []).map((p) => p.page).filter((n) => !truthPages.has(n));
    return { ...total, cer: ratio(total.char_edits, total.chars), wer: ratio(total.word_edits, total.words), pages, unscored_pages: unscored };
  }
  const counts = textCounts(truth.text, output?.text ?? '', caseSensitive, budget);
  return { ...counts, cer: ratio(counts.char_edits, counts.chars), wer: ratio(counts.word_edits, counts.words), pages: null, unscored_pages: [] };
}

export function sum(parts: TextCounts[]): TextCounts {
  const total: TextCounts = { chars: 0, char_edits: 0, words: 0, word_edits: 0, exact: true };
  for (const p of parts) {
    total.chars += p.chars;
    total.char_edits += p.char_edits;
    total.words += p.words;
    total.word_edits += p.word_edits;
    total.exact &&= p.exact;
  }
  return total;
}

/** Code points, word ids, and each word's span in code points. */
function tokenise(text: string, ids: Map<string, number>): { chars: Int32Array; words: Int32Array; spans: Token[] } {
  const chars: number[] = [];
  for (const ch of text) chars.push(ch.codePointAt(0)!);
  const spans: Token[] = [];
  const words: number[] = [];
  let at = 0;
  for (const word of text === '' ? [] : text.split(' ')) {
    let key = ids.get(word);
    if (key === undefined) ids.set(word, (key = ids.size));
    const length = [...word].length;
    spans.push({ key, start: at, end: at + length });
    words.push(key);
    at += length + 1;
  }
  return { chars: Int32Array.from(chars), words: Int32Array.from(words), spans };
}
