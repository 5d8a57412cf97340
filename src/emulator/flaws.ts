/**
 * The texts of answers that fail validation: cut off at max_tokens, stuck in a loop, or broken
 * JSON. A cut-off or looping answer has exactly `budget` tokens by the count that
 * `usage.completion_tokens` reports (filler words are one o200k token each, as in reply.ts), and
 * begins like the good answer would: inside the last string value of the JSON, after the header
 * of a text reply.
 */
import { decode } from 'gpt-tokenizer/encoding/o200k_base';
import { countText, encodeText } from './tokens.ts';

const WORDS = ['the', 'total', 'of', 'page', 'value', 'and', 'line', 'amount', 'is', 'shown', 'in', 'table', 'above', 'with', 'same', 'item'];

/** The first `n` tokens of a text (a prefix of it, up to a split multi-byte character). */
export function truncateToTokens(text: string, n: number): string {
  const ids = encodeText(text);
  return ids.length <= n ? text : decode(ids.slice(0, n)).replace(/\uFFFD+$/u, '');
}

/** Deterministic words from 32 bits of seed, as many as asked. */
function words(bits: number, count: number): string[] {
  let x = bits || 0x9e3779b9;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.push(WORDS[x % WORDS.length] as string);
  }
  return out;
}

/** `start`, then `more` words (each a token), cut to `budget` tokens if `start` alone is longer. */
function fillTo(start: string, budget: number, more: (count: number) => string[]): string {
  const used = countText(start);
  if (used >= budget) return truncateToTokens(start, budget);
  const tail = more(budget - used);
  const sep = start === '' || /\s$/.test(start) ? '' : ' ';
  return start + sep + tail.join(' ');
}

/** The answer ran on to max_tokens: the start, then words that never reach an end. */
export function cutoffText(start: string, budget: number, bits: number): string {
  return fillTo(start, budget, (n) => words(bits, n));
}

/** A degenerate repetition: the start, then one short phrase over and over until max_tokens. */
export function loopText(start: string, budget: number, bits: number): string {
  const phrase = words(bits >>> 3, 2 + (bits % 3));
  return fillTo(start, budget, (n) => Array.from({ length: n }, (_, i) => phrase[i % phrase.length] as string));
}

/**
 * JSON that a parser refuses, the way models break it: a trailing comma, the closing bracket
 * missing, or single quotes. Each also fails after stripping a Markdown fence.
 */
export function breakJson(json: string, bits: number): string {
  const closer = json.at(-1);
  if (closer !== '}' && closer !== ']') return json.startsWith('"') ? json.slice(0, -1) : `${json},`;
  switch (bits % 3) {
    case 0:
      return `${json.slice(0, -1)}${json.length > 2 ? ',' : ''} ${closer}`.replace(/^([{[]) ([}\]])$/, '$1,$2');
    case 1:
      return json.slice(0, -1);
    default:
      return json.includes('"') ? json.replaceAll('"', "'") : json.slice(0, -1);
  }
}
