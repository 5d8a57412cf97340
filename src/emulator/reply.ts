/**
 * Deterministic replies. The first lines say what reached the model (each image's size, format and
 * hash; the described text's word count, hash and ends), so a test can tie every output to its
 * input; the rest is filler words drawn from a generator seeded by the request's content.
 */
import { createHash } from 'node:crypto';
import type { Timing } from './options.ts';
import type { ImageInfo, PreparedPrompt } from './prompt.ts';
import { countText } from './tokens.ts';

// Short common words, each a single o200k token with its leading space, so the filler's token
// count matches the number of words.
const WORDS = [
  'the', 'of', 'and', 'to', 'in', 'is', 'that', 'for', 'it', 'as', 'with', 'was', 'on', 'be', 'by', 'this',
  'are', 'from', 'or', 'an', 'at', 'which', 'page', 'text', 'model', 'data', 'value', 'table', 'figure', 'section',
  'result', 'report', 'line', 'first', 'second', 'new', 'time', 'year', 'number', 'part', 'case', 'point',
  'group', 'order', 'level', 'form', 'list', 'note', 'total', 'rate', 'price', 'name', 'date', 'field',
  'row', 'column', 'chart', 'summary', 'item', 'area', 'study', 'work', 'use', 'set',
] as const;

/** The reply's first lines. */
export function replyHeader(model: string, prompt: Pick<PreparedPrompt, 'lastImages' | 'lastText'>): string {
  const lines = [`[emulated reply by ${model}]`];
  prompt.lastImages.forEach((img: ImageInfo, i) => {
    lines.push(`image ${i + 1}: ${img.width}x${img.height} ${img.format} sha256=${img.sha16}`);
  });
  lines.push(describeText(prompt.lastText));
  return lines.join('\n');
}

/** `text: words=<n> sha256=<16 hex> first="<first 8 words>" last="<last 8 words>"`. */
export function describeText(text: string): string {
  const words = text.split(/\s+/u).filter((w) => w !== '');
  const sha16 = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const first = JSON.stringify(words.slice(0, 8).join(' '));
  const last = JSON.stringify(words.slice(-8).join(' '));
  return `text: words=${words.length} sha256=${sha16} first=${first} last=${last}`;
}

/** How many tokens the model "wants" to say for this content: uniform in [min, max]. */
export function naturalLength(seed: Buffer, min: number, max: number): number {
  return min + (seed.readUInt32BE(0) % (max - min + 1));
}

/**
 * The natural length under a timing: uniform in [outputTokensMin, outputTokensMax], or for a
 * `longOutputShare` of the seeds (decided by seed bytes 8-11) in the long range.
 */
export function outputLength(seed: Buffer, t: Pick<Timing, 'outputTokensMin' | 'outputTokensMax' | 'longOutputShare' | 'longOutputTokensMin' | 'longOutputTokensMax'>): number {
  const long = t.longOutputShare > 0 && seed.readUInt32BE(8) / 2 ** 32 < t.longOutputShare;
  return long ? naturalLength(seed, t.longOutputTokensMin, t.longOutputTokensMax) : naturalLength(seed, t.outputTokensMin, t.outputTokensMax);
}

/** xorshift32: cheap, deterministic, good enough to vary filler words. */
function nextRandom(state: { x: number }): number {
  let x = state.x;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  state.x = x >>> 0;
  return state.x;
}

/**
 * The reply text for `tokens` generated tokens: the header, then filler words up to that count.
 * The header is always whole (a test needs it), so a reply shorter than its header is the header.
 * A capped reply is a prefix of the uncapped one: the filler depends only on the seed.
 */
export function replyText(header: string, seed: Buffer, tokens: number): string {
  const fillerCount = tokens - countText(header);
  if (fillerCount <= 0) return header;
  const state = { x: seed.readUInt32BE(4) || 0x9e3779b9 };
  const out: string[] = [header, '\n'];
  for (let i = 0; i < fillerCount; i++) {
    out.push(i === 0 ? '' : ' ', WORDS[nextRandom(state) % WORDS.length] ?? 'the');
  }
  return out.join('');
}
