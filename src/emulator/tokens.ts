/**
 * Token counts that look like a Qwen2.5-VL-class model's: o200k_base for text (close enough to
 * Qwen's BPE for sizing), a ChatML template overhead per message, and one token per 28x28 pixels
 * of an image plus its vision start/end markers.
 */
import { encode } from 'gpt-tokenizer/encoding/o200k_base';

/** `<|im_start|>`, role, newline ... `<|im_end|>`, newline. */
export const MESSAGE_OVERHEAD = 5;
/** `<|im_start|>assistant\n` appended as the generation prompt. */
export const GENERATION_PROMPT = 3;
/** Pixels per image token along each side (14 px patches merged 2x2). */
export const IMAGE_PATCH_PX = 28;

// Qwen2.5-VL's special token ids, so /tokenize output has the right shape.
const IM_START = 151644;
const IM_END = 151645;
const VISION_START = 151652;
const VISION_END = 151653;
const IMAGE_PAD = 151655;

// Text that happens to contain "<|endoftext|>" is ordinary text to us, never a control token.
const NO_SPECIAL = { disallowedSpecial: new Set<string>() };

// BPE is quadratic in the length of one pre-token: 100 kB of "=" or "a" with no space takes
// seconds, which would stall the engine loop. Runs that long are encoded in slices instead (the
// count moves by a token or two, and only for such runs).
const LONG_RUN = /\S{512,}/g;
const SLICE = 256;

function append(ids: number[], more: readonly number[]): void {
  for (const id of more) ids.push(id);
}

export function encodeText(text: string): number[] {
  if (text === '') return [];
  if (text.length < 512) return encode(text, NO_SPECIAL);
  const ids: number[] = [];
  let last = 0;
  for (const m of text.matchAll(LONG_RUN)) {
    append(ids, encode(text.slice(last, m.index), NO_SPECIAL));
    for (let i = 0; i < m[0].length; i += SLICE) append(ids, encode(m[0].slice(i, i + SLICE), NO_SPECIAL));
    last = m.index + m[0].length;
  }
  if (last === 0) return encode(text, NO_SPECIAL);
  append(ids, encode(text.slice(last), NO_SPECIAL));
  return ids;
}

// Every request of a run carries the same system prompt and instructions: their counts are
// remembered (BPE was a sixth of the emulator's CPU in bench/pipeline-pages.ts).
const COUNTED = new Map<string, number>();
const COUNTED_MAX = 256;
const COUNTED_LONGEST = 16_384;

export function countText(text: string): number {
  if (text.length > COUNTED_LONGEST) return encodeText(text).length;
  let n = COUNTED.get(text);
  if (n === undefined) {
    n = encodeText(text).length;
    if (COUNTED.size >= COUNTED_MAX) COUNTED.delete(COUNTED.keys().next().value!);
    COUNTED.set(text, n);
  }
  return n;
}

export function imageTokens(width: number, height: number): number {
  return Math.ceil(width / IMAGE_PATCH_PX) * Math.ceil(height / IMAGE_PATCH_PX) + 2;
}

/** One part of a message as far as tokens go. */
export type TokenPart = { text: string } | { width: number; height: number };

/** The token ids of a chat prompt (for /tokenize); its length is what the engine counts. */
export function chatTokenIds(messages: readonly { role: string; parts: readonly TokenPart[] }[]): number[] {
  const ids: number[] = [];
  const newline = encodeText('\n');
  for (const m of messages) {
    ids.push(IM_START, ...encodeText(m.role).slice(0, 1), ...newline.slice(0, 1));
    for (const p of m.parts) {
      if ('text' in p) {
        for (const id of encodeText(p.text)) ids.push(id);
      } else {
        ids.push(VISION_START);
        const pads = imageTokens(p.width, p.height) - 2;
        for (let i = 0; i < pads; i++) ids.push(IMAGE_PAD);
        ids.push(VISION_END);
      }
    }
    ids.push(IM_END, ...newline.slice(0, 1));
  }
  ids.push(IM_START, ...encodeText('assistant').slice(0, 1), ...newline.slice(0, 1));
  return ids;
}
