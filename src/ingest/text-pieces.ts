/**
 * A text too long for one chunk cut into pieces within a token limit: at paragraph, then line,
 * then sentence, then character boundaries (splitText), a piece a range of the text packed unit by
 * unit in one pass (chunk.ts makes the labelled parts of a message from them).
 */
import { estimatePrefixEnd, estimateTokens, TokenTally } from './tokens.ts';

/**
 * `target.push(...items)` for a list of any length: a spread passes every item as an argument
 * on the stack, and throws RangeError past ~125 000 of them (one long message cut small).
 */
export function append<T>(target: T[], items: readonly T[]): void {
  for (const item of items) target.push(item);
}

/**
 * Separators, coarse to fine. A piece keeps its separator at its end, so pieces join back to the
 * text. Sentence ends: Latin, CJK, Devanagari (danda `।`, `॥`), Arabic and Urdu (`۔ ؟ ؛`).
 */
const LEVELS: readonly RegExp[] = [/(?<=\n[ \t]*\n)/, /(?<=\n)/, /(?<=[.!?;:。！？；…।॥۔؟؛][)"'”’»]?\s)|(?<=[。！？；])/];

/**
 * Cuts `text` into trimmed, non-empty pieces with `count(piece) <= limit`, preferring paragraph,
 * then line, then sentence boundaries, and cutting between characters only when a sentence is
 * longer than the limit.
 */
export function splitText(text: string, limit: number, count: (t: string) => number, level = 0, known?: number): string[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  // `known` is an upper bound of count(trimmed) when the caller has it (saves counting twice).
  if ((known ?? count(trimmed)) <= limit) return [trimmed];
  const sep = LEVELS[level];
  if (sep === undefined) return hardSplit(trimmed, limit, count);
  const ends = new UnitEnds(trimmed, sep);
  const first = ends.next();
  if (first < 0) return splitText(trimmed, limit, count, level + 1, known);
  return (count === estimateTokens ? packEstimated : packCounted)(trimmed, first, ends, limit, count, level);
}

/**
 * Where `text` splits into units at `sep` (a lookbehind: a unit keeps its separator at its end),
 * as `text.split(sep)` would, the end of the last unit included; found one at a time (`next`, -1
 * after the last), so a text of millions of tiny units is never an array of millions of strings.
 */
class UnitEnds {
  readonly #text: string;
  readonly #re: RegExp;
  #last = 0;
  #done = false;
  constructor(text: string, sep: RegExp) {
    this.#text = text;
    this.#re = new RegExp(sep.source, 'g');
  }
  next(): number {
    if (this.#done) return -1;
    const re = this.#re;
    for (let m = re.exec(this.#text); m !== null && m.index < this.#text.length; m = re.exec(this.#text)) {
      if (re.lastIndex === m.index) re.lastIndex += 1;
      if (m.index === this.#last) continue;
      this.#last = m.index;
      return m.index;
    }
    this.#done = true;
    return this.#last > 0 ? this.#text.length : -1;
  }
}

/** The same whitespace as String.prototype.trim's (and `\s`). */
function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || (c > 127 && (c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff));
}

/**
 * Units packed greedily into pieces (a unit joins the piece when the trimmed piece with it still
 * fits), a unit over the limit cut at the next level. A piece is a range of `text`: its text up to
 * `bodyEnd`, then whitespace that joins it only if more text follows (pieces are trimmed), so a run
 * of blank lines costs nothing until text follows it and is dropped at a cut. Each character is
 * looked at a bounded number of times (a run of blank lines kept a piece's count at a few tokens
 * while its text grew with every unit, and the piece was counted again for each: 1M newlines took
 * 4.7 s, 2M 13 s). For estimateTokens the piece's count is kept exactly, unit by unit (TokenTally).
 */
function packEstimated(text: string, firstEnd: number, ends: UnitEnds, limit: number, count: (t: string) => number, level: number): string[] {
  const out: string[] = [];
  let bodyStart = -1; // -1: no piece yet
  let bodyEnd = 0;
  let tally = new TokenTally();
  let probe = new TokenTally();
  const unit = new TokenTally();
  const flush = (): void => {
    if (bodyStart >= 0) out.push(text.slice(bodyStart, bodyEnd));
    bodyStart = -1;
    tally.clear();
  };
  let start = 0;
  for (let end = firstEnd; end >= 0; start = end, end = ends.next()) {
    if (unit.clear().add(text, start, end).tokens > limit) {
      flush();
      const piece = text.slice(start, end);
      append(out, splitText(piece, limit, count, level + 1, isSpace(piece.charCodeAt(0)) || isSpace(piece.charCodeAt(piece.length - 1)) ? undefined : unit.tokens));
      continue;
    }
    let coreEnd = end;
    while (coreEnd > start && isSpace(text.charCodeAt(coreEnd - 1))) coreEnd--;
    if (coreEnd === start) continue; // whitespace only: part of the piece only if text follows
    if (bodyStart < 0) {
      let coreStart = start;
      while (isSpace(text.charCodeAt(coreStart))) coreStart++;
      bodyStart = coreStart;
      tally.add(text, coreStart, coreEnd);
    } else {
      probe.setTo(tally).add(text, bodyEnd, coreEnd);
      if (probe.tokens > limit) {
        flush();
        let coreStart = start;
        while (isSpace(text.charCodeAt(coreStart))) coreStart++;
        bodyStart = coreStart;
        tally.add(text, coreStart, coreEnd);
      } else [tally, probe] = [probe, tally];
    }
    bodyEnd = coreEnd;
  }
  flush();
  return out;
}

/**
 * packEstimated for any counter: a piece's count is taken as the sum of its units' counts (an
 * upper bound for BPE counters in practice; toBlocks counts each part exactly and cuts it again
 * if not), and the piece counted exactly only when that sum crosses the limit.
 */
function packCounted(text: string, firstEnd: number, ends: UnitEnds, limit: number, count: (t: string) => number, level: number): string[] {
  const out: string[] = [];
  let bodyStart = -1;
  let bodyEnd = 0;
  /** Upper bound of count(text.slice(bodyStart, bodyEnd)), and of what the whitespace after it adds. */
  let bodyTokens = 0;
  let tailTokens = 0;
  const flush = (): void => {
    if (bodyStart >= 0) out.push(text.slice(bodyStart, bodyEnd));
    bodyStart = -1;
    bodyTokens = 0;
    tailTokens = 0;
  };
  let start = 0;
  for (let end = firstEnd; end >= 0; start = end, end = ends.next()) {
    const piece = text.slice(start, end);
    const t = count(piece);
    if (t > limit) {
      flush();
      append(out, splitText(piece, limit, count, level + 1, piece === piece.trim() ? t : undefined));
      continue;
    }
    let coreEnd = end;
    while (coreEnd > start && isSpace(text.charCodeAt(coreEnd - 1))) coreEnd--;
    if (coreEnd === start) {
      if (bodyStart >= 0) tailTokens += t;
      continue;
    }
    let coreStart = start;
    while (isSpace(text.charCodeAt(coreStart))) coreStart++;
    if (bodyStart < 0) {
      bodyStart = coreStart;
      bodyTokens = t;
    } else if (bodyTokens + tailTokens + t <= limit) bodyTokens += tailTokens + t;
    else {
      const exact = count(text.slice(bodyStart, coreEnd));
      if (exact > limit) {
        flush();
        bodyStart = coreStart;
        bodyTokens = t;
      } else bodyTokens = exact + (coreEnd < end ? count(text.slice(coreEnd, end)) : 0);
    }
    tailTokens = 0;
    bodyEnd = coreEnd;
  }
  flush();
  return out;
}

/**
 * Cuts between characters (never inside a surrogate pair or before a combining mark). A run with
 * no such place within a whole part (only combining marks, joiners or selectors) is cut where the
 * budget ends, a surrogate pair still kept whole: walking back to its start would make parts of
 * one character each, thousands of chunks from a few kilobytes.
 */
export function hardSplit(text: string, limit: number, count: (t: string) => number): string[] {
  const out: string[] = [];
  let start = 0;
  while (start < text.length) {
    const fit = Math.max(count === estimateTokens ? estimatePrefixEnd(text, start, limit) : longestPrefix(text, start, limit, count), start + 1);
    let end = fit;
    while (end < text.length && end - start > 1 && isJoiner(text, end)) end--;
    if (end - start === 1 && fit - start > 1) end = isLowSurrogate(text, fit) ? fit - 1 : fit;
    const piece = text.slice(start, end).trim();
    if (piece !== '') out.push(piece);
    start = end;
  }
  return out;
}

/** For any counter: grow the candidate exponentially, then binary-search the longest prefix that fits. */
function longestPrefix(text: string, start: number, limit: number, count: (t: string) => number): number {
  let lo = 0;
  let hi = Math.max(1, limit);
  while (start + hi < text.length && count(text.slice(start, start + hi)) <= limit) {
    lo = hi;
    hi *= 2;
  }
  hi = Math.min(hi, text.length - start);
  if (count(text.slice(start, start + hi)) <= limit) lo = hi;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (count(text.slice(start, start + mid)) <= limit) lo = mid;
    else hi = mid;
  }
  return start + lo;
}

function isLowSurrogate(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  return c >= 0xdc00 && c <= 0xdfff;
}

/**
 * What belongs to the character before it: a combining mark of any script (`\p{M}`: Thai, Devanagari
 * and Arabic vowel signs, tone marks and harakat as much as Latin accents, variation selectors), an
 * emoji skin tone, a zero-width joiner, a tag (the subdivision flags), a Hangul vowel or final
 * consonant jamo (Korean in NFD, as macOS writes names).
 */
const ATTACHED = /^[\p{M}\p{Emoji_Modifier}\u200d\u{E0020}-\u{E007F}\u1160-\u11ff\ud7b0-\ud7ff]/u;

const isRegionalIndicator = (cp: number | undefined) => cp !== undefined && cp >= 0x1f1e6 && cp <= 0x1f1ff;

/** True when a cut before index `i` would separate a character from what belongs to it. */
function isJoiner(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  if (c >= 0xdc00 && c <= 0xdfff) return true; // low surrogate
  if (text.charCodeAt(i - 1) === 0x200d) return true; // after a zero-width joiner
  const cp = text.codePointAt(i)!;
  if (cp < 0x300) return false;
  if (ATTACHED.test(String.fromCodePoint(cp))) return true;
  // A flag is two regional indicators: a cut after an odd number of them splits one.
  if (!isRegionalIndicator(cp)) return false;
  let run = 0;
  for (let j = i - 2; j >= 0 && isRegionalIndicator(text.codePointAt(j)); j -= 2) run++;
  return run % 2 === 1;
}
