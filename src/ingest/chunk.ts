/**
 * A conversation's visible messages → chunks whose token count stays within a budget.
 *
 * Chunks break at message boundaries. A message too long for one chunk is cut into parts at
 * paragraph, then line, then sentence, then character boundaries (text-pieces.ts); each part is its own block
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
import { append, hardSplit, splitText } from './text-pieces.ts';

export { splitText } from './text-pieces.ts';

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
