/**
 * A conversation's visible messages → chunks whose token count stays within a budget.
 *
 * Chunks break at message boundaries. A message too long for one chunk is cut into parts at
 * paragraph, then line, then sentence, then character boundaries; each part is its own block
 * (`assistant (part 2/3): ...`) and the message id is listed in every chunk that holds a part.
 * Optional overlap repeats the previous chunk's trailing whole messages at the start of the
 * next one; those ids go to `overlapIds`, never `messageIds`, so every message is in exactly one
 * chunk's `messageIds` (a split message: in each chunk holding one of its parts).
 *
 * Packing sums the blocks' counts; for a counter that is not additive the finished text is
 * counted again and trailing blocks move on to the next chunk until it fits, so the budget holds
 * for any `countTokens`.
 *
 * With `maxChunks`, a conversation that would make more chunks throws ChunkLimitError there,
 * before the rest is packed. Parts are appended in loops: a message may become any number of
 * them, more than a spread (`push(...parts)`) can pass as arguments.
 */
import type { ChatMessage } from './chat/types.ts';
import { estimatePrefixEnd, estimateTokens } from './tokens.ts';

export interface ChunkOptions {
  /** No chunk's `countTokens(text)` exceeds this. */
  budgetTokens: number;
  /** Up to this many tokens of the previous chunk's trailing whole messages are repeated. */
  overlapTokens: number;
  countTokens: (text: string) => number;
  /** Throw ChunkLimitError rather than make more chunks than this. @defaultValue no limit */
  maxChunks?: number;
}

/** chunkMessages would make more than `maxChunks` chunks; it stopped there. */
export class ChunkLimitError extends Error {
  readonly maxChunks: number;
  constructor(maxChunks: number) {
    super(`more than ${maxChunks} chunks`);
    this.name = 'ChunkLimitError';
    this.maxChunks = maxChunks;
  }
}

/** A message too long for one chunk has a role label that leaves its parts no room at this budget. */
export class HeaderTooLongError extends RangeError {
  readonly messageId: string;
  readonly headerTokens: number;
  constructor(messageId: string, headerTokens: number, budget: number) {
    super(`budgetTokens ${budget} is too small for a message header of ${headerTokens} tokens`);
    this.name = 'HeaderTooLongError';
    this.messageId = messageId;
    this.headerTokens = headerTokens;
  }
}

export interface Chunk {
  messageIds: string[];
  overlapIds: string[];
  text: string;
  tokens: number;
}

/** The smallest budget accepted: a block header plus a little text must fit. */
export const MIN_BUDGET_TOKENS = 64;

const SEPARATOR = '\n\n';

interface Block {
  id: string;
  text: string;
  tokens: number;
  /** False for a part of a split message: parts are never repeated as overlap. */
  whole: boolean;
}

export function chunkMessages(messages: readonly ChatMessage[], options: ChunkOptions): Chunk[] {
  const { budgetTokens: budget, countTokens: count } = options;
  const blocks: Block[] = [];
  for (const m of messages) append(blocks, toBlocks(m, budget, count));
  const sep = count(SEPARATOR);
  const costOf = (list: readonly Block[]): number => list.reduce((s, b, i) => s + b.tokens + (i > 0 ? sep : 0), 0);

  const chunks: Chunk[] = [];
  let previous: Block[] = [];
  let i = 0;
  while (i < blocks.length) {
    const first = blocks[i] as Block;
    const overlap = pickOverlap(previous, Math.min(options.overlapTokens, budget - first.tokens - sep), sep);
    const members: Block[] = [];
    let sum = costOf(overlap);
    while (i < blocks.length) {
      const b = blocks[i] as Block;
      const add = b.tokens + (members.length + overlap.length > 0 ? sep : 0);
      if (members.length > 0 && sum + add > budget) {
        // The sum overestimates (each count has its own rounding): ask the counter once.
        const exact = count(join(overlap, [...members, b]));
        if (exact > budget) break;
        sum = exact;
      } else sum += add;
      members.push(b);
      i++;
    }
    let text = join(overlap, members);
    // A lone block was counted already, as this very text.
    let tokens = overlap.length === 0 && members.length === 1 ? (members[0] as Block).tokens : count(text);
    while (tokens > budget && (overlap.length > 0 || members.length > 1)) {
      if (overlap.length > 0) overlap.shift();
      else {
        members.pop();
        i--;
      }
      text = join(overlap, members);
      tokens = count(text);
    }
    if (tokens > budget) throw new Error(`internal: a block of ${tokens} tokens exceeds the budget of ${budget}`);
    if (options.maxChunks !== undefined && chunks.length >= options.maxChunks) throw new ChunkLimitError(options.maxChunks);
    chunks.push({
      messageIds: unique(members.map((b) => b.id)),
      overlapIds: overlap.map((b) => b.id),
      text,
      tokens,
    });
    previous = members;
  }
  return chunks;
}

/**
 * `target.push(...items)` for a list of any length: a spread passes every item as an argument
 * on the stack, and throws RangeError past ~125 000 of them (one long message cut small).
 */
function append<T>(target: T[], items: readonly T[]): void {
  for (const item of items) target.push(item);
}

function join(overlap: readonly Block[], members: readonly Block[]): string {
  return [...overlap, ...members].map((b) => b.text).join(SEPARATOR);
}

function unique(ids: string[]): string[] {
  return ids.filter((id, k) => k === 0 || ids[k - 1] !== id);
}

/** The longest run of trailing whole blocks of `previous` costing at most `limit`. */
function pickOverlap(previous: readonly Block[], limit: number, sep: number): Block[] {
  const out: Block[] = [];
  let sum = 0;
  for (let k = previous.length - 1; k >= 0; k--) {
    const b = previous[k] as Block;
    if (!b.whole) break;
    const add = b.tokens + (out.length > 0 ? sep : 0);
    if (sum + add > limit) break;
    out.unshift(b);
    sum += add;
  }
  return out;
}

function toBlocks(m: ChatMessage, budget: number, count: (t: string) => number): Block[] {
  const text = `${m.role}: ${m.text}`;
  const tokens = count(text);
  if (tokens <= budget) return [{ id: m.id, text, tokens, whole: true }];
  // Reserve room for the longest header this message could get.
  const header = count(`${m.role} (part 99999/99999): `);
  const limit = budget - header - 1;
  if (limit < 1) throw new HeaderTooLongError(m.id, header, budget);
  let pieces = splitText(m.text, limit, count, 0, m.text === m.text.trim() ? tokens : undefined);
  for (let attempt = 0; ; attempt++) {
    const blocks = pieces.map((piece, k) => {
      const partText = `${m.role} (part ${k + 1}/${pieces.length}): ${piece}`;
      return { id: m.id, text: partText, tokens: count(partText), whole: false };
    });
    if (blocks.every((b) => b.tokens <= budget) || attempt === 3) return blocks;
    // The counter is not additive enough: cut the parts that came out too long once more, tighter.
    const tighter = Math.max(1, limit - (attempt + 1) * Math.ceil(limit / 8));
    pieces = pieces.flatMap((piece, k) => ((blocks[k] as Block).tokens <= budget ? [piece] : hardSplit(piece, tighter, count)));
  }
}

/** Separators, coarse to fine. A piece keeps its separator at its end, so pieces join back to the text. */
const LEVELS: readonly RegExp[] = [/(?<=\n[ \t]*\n)/, /(?<=\n)/, /(?<=[.!?;:。！？；…][)"'”’»]?\s)|(?<=[。！？；])/];

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
  const units = trimmed.split(sep);
  if (units.length === 1) return splitText(trimmed, limit, count, level + 1, known);
  const out: string[] = [];
  let current = '';
  let currentTokens = 0;
  // A piece's count is taken as the sum of its units' counts, an upper bound for the estimate
  // and for BPE counters in practice; toBlocks counts each part exactly and cuts it again if not.
  const flush = (): void => {
    const piece = current.trim();
    if (piece !== '') out.push(piece);
    current = '';
    currentTokens = 0;
  };
  for (const unit of units) {
    const t = count(unit);
    if (t > limit) {
      flush();
      append(out, splitText(unit, limit, count, level + 1, unit === unit.trim() ? t : undefined));
      continue;
    }
    if (current !== '' && currentTokens + t > limit) {
      const exact = count((current + unit).trim());
      if (exact > limit) flush();
      else {
        current += unit;
        currentTokens = exact;
        continue;
      }
    }
    current += unit;
    currentTokens += t;
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
function hardSplit(text: string, limit: number, count: (t: string) => number): string[] {
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

/** True when a cut before index `i` would separate a character from what belongs to it. */
function isJoiner(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  const before = text.charCodeAt(i - 1);
  return (
    (c >= 0xdc00 && c <= 0xdfff) || // low surrogate
    (c >= 0x300 && c <= 0x36f) || // combining diacritics
    (c >= 0x1ab0 && c <= 0x1aff) ||
    (c >= 0x1dc0 && c <= 0x1dff) ||
    (c >= 0x20d0 && c <= 0x20ff) ||
    (c >= 0xfe00 && c <= 0xfe0f) || // variation selectors
    (c >= 0xfe20 && c <= 0xfe2f) ||
    c === 0x200d || // zero-width joiner
    before === 0x200d
  );
}
