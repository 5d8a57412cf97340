/**
 * A fast local token estimate that is meant never to undercount a real BPE tokenizer (measured
 * against o200k_base and cl100k_base; see docs/chat-exports.md for the table of ratios and
 * test/ingest/tokens.test.ts for the assertion). Chunks are cut so that their estimate stays
 * under a budget; an undercount would send the engine a prompt longer than planned, an
 * overcount only makes chunks a little smaller, so every weight errs upward.
 *
 * How it works: one pass over the UTF-16 code units, one table lookup per unit, no regex.
 * BPE tokenizers first split text into "words" (runs of letters, of up to three digits, of
 * punctuation, of whitespace) and then merge bytes inside each word. So ASCII text costs one
 * token per run start, plus a little per further character; letters that a word would not
 * usually contain (an upper-case letter inside a run, as in base64 or camelCase) cost more.
 * Other scripts cost a fixed weight per code unit, chosen per script from measurements.
 */

// Character classes. 0..5 are the ASCII run classes; the rest are weight-only classes.
const LOWER = 0;
const UPPER = 1;
const DIGIT = 2;
const SPACE = 3;
const BREAK = 4; // \n \r \t and other ASCII control or whitespace
const PUNCT = 5;
const LATIN_EXT = 6; // U+0080–U+02FF: accented Latin letters, Latin-1 symbols
const COMBINING = 7; // U+0300–U+036F and other combining marks
const GREEK = 8;
const CYRILLIC = 9;
const HEBREW = 10;
const ARABIC = 11;
const OTHER_2BYTE = 12; // the rest of U+0370–U+07FF (Armenian, Syriac, ...)
const INDIC_SEA = 13; // U+0800–U+0FFF and U+1000–U+109F: Devanagari ... Thai, Lao, Tibetan, Myanmar
const HANGUL = 14;
const KANA = 15; // hiragana, katakana, CJK symbols and punctuation, fullwidth forms
const IDEOGRAPH = 16; // CJK unified ideographs and extensions in the BMP
const GENERAL_PUNCT = 17; // U+2000–U+206F: quotes, dashes, ZWJ ...
const SYMBOL = 18; // arrows, math, dingbats, misc symbols (many emoji live here)
const SURROGATE = 19; // one half of an astral code point (emoji, rare ideographs)
const VARIATION = 20; // U+FE00–U+FE0F variation selectors
const OTHER_BMP = 21;
const CYRILLIC_EXT = 22; // Cyrillic beyond the Russian А–я: Ukrainian, Serbian, ... letters tokenize worse
const INVISIBLE = 23; // zero-width space/joiners, bidi controls, BOM: often a token each or more
const INDIC_RARE = 24; // Gurmukhi, Gujarati, Oriya, Telugu, Kannada, Malayalam, Sinhala, Lao, Tibetan, Myanmar: few merges
const BOX = 25; // box drawing, block elements, geometric shapes (tree listings, tables)
const CLASS_COUNT = 26;

/**
 * A weight that cannot undercount a 3-byte UTF-8 character: a byte-level BPE token holds at least
 * one byte, so a character costs at most 3 tokens, and 2.75 × MARGIN (1.1) ≥ 3. For what is
 * rare in the tokenizers' training text (scripts and symbols they barely merge).
 */
const BYTE_BOUND_3 = 2.75;

/**
 * Weight of one code unit of each non-ASCII class, in tokens. Measured as the worst
 * tokens-per-unit of cl100k_base and o200k_base over natural text in that script, rounded up.
 */
const UNIT_WEIGHT = new Float64Array(CLASS_COUNT);
UNIT_WEIGHT[LATIN_EXT] = 1.0;
UNIT_WEIGHT[COMBINING] = 2.0;
UNIT_WEIGHT[GREEK] = 1.1;
UNIT_WEIGHT[CYRILLIC] = 0.7;
UNIT_WEIGHT[HEBREW] = 1.25;
UNIT_WEIGHT[ARABIC] = 1.0;
UNIT_WEIGHT[OTHER_2BYTE] = 2.0;
UNIT_WEIGHT[INDIC_SEA] = 1.6;
UNIT_WEIGHT[INDIC_RARE] = 2.2; // cl100k: up to 2 tokens a character, even on natural text
UNIT_WEIGHT[HANGUL] = 1.3;
UNIT_WEIGHT[KANA] = 1.3;
UNIT_WEIGHT[IDEOGRAPH] = 1.3;
UNIT_WEIGHT[GENERAL_PUNCT] = 1.5;
UNIT_WEIGHT[SYMBOL] = BYTE_BOUND_3; // arrows, math, enclosed ①②, braille: often a token a byte
UNIT_WEIGHT[BOX] = 2.0;
UNIT_WEIGHT[SURROGATE] = 2.0;
UNIT_WEIGHT[VARIATION] = 1.5;
UNIT_WEIGHT[OTHER_BMP] = BYTE_BOUND_3;
UNIT_WEIGHT[CYRILLIC_EXT] = 2.0;
UNIT_WEIGHT[INVISIBLE] = 2.2;

/** Costs of the ASCII runs (tokens). */
const RUN_START = 1; // the first character of a letter, punctuation or line-break run
const LETTER = 0.06; // a further letter of a word, up to LONG_WORD letters
const LONG_WORD = 7;
const LONG_LETTER = 0.25; // each letter past LONG_WORD (long words split into pieces)
const INNER_UPPER = 1; // an upper-case letter inside a run (camelCase, base64, ALLCAPS)
const DIGIT_GROUP = 1; // every group of up to three digits
const SPACE_BEFORE_DIGIT = 1; // a space does not merge into a following number
const PUNCT_MORE = 0.35; // a further punctuation character in a run
const SPACE_RUN = 1; // a run of two or more spaces (the last one joins the next word)
const SPACE_MORE = 0.07; // each space past the second
const BREAK_MORE = 0.3; // a further \n, \t or \r in a run

/** The sum is multiplied by MARGIN, then CONSTANT is added: the safety margin. */
const MARGIN = 1.1;
const CONSTANT = 1;

const CLASS_OF = buildClassTable();

/**
 * The ASCII rules above as a state machine, so the hot loop is two table lookups and an integer
 * add per code unit (no branches). States remember the run we are in: a word's length so far,
 * the position in a group of three digits, a space run's length, or "punctuation" / "break".
 * Costs are fixed-point (hundredths of a token) so the sum stays a small integer.
 */
const OTHER = 0;
const WORD = 1; // WORD + n - 1 = the n-th letter of a word, n = 1..LONG_WORD + 1 (the last: longer)
const D1 = WORD + LONG_WORD + 1;
const D2 = D1 + 1;
const D3 = D2 + 1;
const SP1 = D3 + 1;
const SP2 = SP1 + 1;
const SP3 = SP2 + 1;
const BR = SP3 + 1;
const PU = BR + 1;
const STATE_COUNT = PU + 1;
const FIXED = 100;

const { COST, NEXT } = buildMachine();

function buildMachine(): { COST: Int32Array; NEXT: Int32Array } {
  const cost = new Int32Array(STATE_COUNT * CLASS_COUNT);
  const next = new Int32Array(STATE_COUNT * CLASS_COUNT);
  const lastWord = WORD + LONG_WORD;
  for (let s = 0; s < STATE_COUNT; s++) {
    const inWord = s >= WORD && s <= lastWord;
    const inSpace = s >= SP1 && s <= SP3;
    for (let k = 0; k < CLASS_COUNT; k++) {
      let c: number;
      let to: number;
      switch (k) {
        case LOWER:
        case UPPER:
          to = inWord ? Math.min(s + 1, lastWord) : WORD;
          c = !inWord ? RUN_START : k === UPPER ? INNER_UPPER : s + 1 > WORD + LONG_WORD - 1 ? LONG_LETTER : LETTER;
          break;
        case DIGIT:
          to = s === D1 ? D2 : s === D2 ? D3 : D1;
          c = s === D1 || s === D2 ? 0 : DIGIT_GROUP + (inSpace ? SPACE_BEFORE_DIGIT : 0);
          break;
        case SPACE:
          to = s === SP1 ? SP2 : s === SP2 || s === SP3 ? SP3 : SP1;
          c = s === SP1 ? SPACE_RUN : s === SP2 || s === SP3 ? SPACE_MORE : 0;
          break;
        case BREAK:
          to = BR;
          c = s === BR ? BREAK_MORE : RUN_START;
          break;
        case PUNCT:
          to = PU;
          c = s === PU ? PUNCT_MORE : RUN_START;
          break;
        default:
          to = OTHER;
          c = UNIT_WEIGHT[k] as number;
      }
      cost[s * CLASS_COUNT + k] = Math.round(c * FIXED);
      next[s * CLASS_COUNT + k] = to * CLASS_COUNT;
    }
  }
  return { COST: cost, NEXT: next };
}

function buildClassTable(): Uint8Array {
  const t = new Uint8Array(0x10000).fill(OTHER_BMP);
  const range = (from: number, to: number, cls: number): void => {
    t.fill(cls, from, to + 1);
  };
  range(0x00, 0x7f, PUNCT);
  range(0x00, 0x1f, BREAK);
  range(0x7f, 0x7f, BREAK);
  range(0x20, 0x20, SPACE);
  range(0x30, 0x39, DIGIT);
  range(0x41, 0x5a, UPPER);
  range(0x61, 0x7a, LOWER);
  range(0x80, 0x24f, LATIN_EXT);
  range(0x250, 0x2ff, OTHER_2BYTE); // IPA and spacing modifiers (ˈ ː): a token a byte
  range(0x300, 0x36f, COMBINING);
  range(0x370, 0x3ff, GREEK);
  range(0x1f00, 0x1fff, GREEK);
  range(0x400, 0x52f, CYRILLIC_EXT);
  range(0x410, 0x44f, CYRILLIC);
  range(0x530, 0x7ff, OTHER_2BYTE);
  range(0x590, 0x5ff, HEBREW);
  range(0x600, 0x6ff, ARABIC);
  range(0x750, 0x77f, ARABIC);
  range(0x800, 0x109f, INDIC_RARE);
  range(0x900, 0x9ff, INDIC_SEA); // Devanagari, Bengali
  range(0xb80, 0xbff, INDIC_SEA); // Tamil
  range(0xe00, 0xe7f, INDIC_SEA); // Thai
  range(0x1100, 0x11ff, HANGUL);
  range(0x1ab0, 0x1aff, COMBINING);
  range(0x1dc0, 0x1dff, COMBINING);
  range(0x1e00, 0x1eff, LATIN_EXT);
  range(0x2000, 0x206f, GENERAL_PUNCT);
  range(0x200b, 0x200f, INVISIBLE);
  range(0x2028, 0x202e, INVISIBLE);
  range(0x2060, 0x206f, INVISIBLE);
  range(0xfeff, 0xfeff, INVISIBLE);
  range(0x2070, 0x2bff, SYMBOL);
  range(0x2500, 0x25ff, BOX);
  range(0x20d0, 0x20ff, COMBINING);
  range(0x3000, 0x30ff, KANA);
  // Hangul compatibility jamo (ㅋㅋㅋ, ㅠㅠ in chats) stay OTHER_BMP: tokenizers barely merge them.
  // CJK extension A (U+3400–U+4DBF): rare ideographs, OTHER_BMP.
  range(0x4e00, 0x9fff, IDEOGRAPH);
  range(0xac00, 0xd7af, HANGUL);
  range(0xd800, 0xdfff, SURROGATE);
  range(0xf900, 0xfaff, IDEOGRAPH);
  range(0xfe00, 0xfe0f, VARIATION);
  range(0xfe20, 0xfe2f, COMBINING);
  range(0xff00, 0xff60, KANA); // fullwidth forms; halfwidth kana and the rest (U+FF61–) stay OTHER_BMP
  return t;
}

/**
 * Estimated token count of `text`: at least the count of o200k_base and cl100k_base on every
 * text we measured, about 1.2–1.5× it on English prose. Linear time, no allocation.
 */
export function estimateTokens(text: string): number {
  const n = text.length;
  if (n === 0) return 0;
  let sum = 0;
  let state = OTHER;
  for (let i = 0; i < n; i++) {
    const idx = state + (CLASS_OF[text.charCodeAt(i)] as number);
    sum += COST[idx] as number;
    state = NEXT[idx] as number;
  }
  return Math.ceil((sum * MARGIN) / FIXED) + CONSTANT;
}

/**
 * The largest `end` such that `estimateTokens(text.slice(start, end)) <= maxTokens`, found in
 * one pass (the estimate only grows as text is added). Lets the chunker cut a long run of text
 * without counting candidate prefixes again and again.
 */
export function estimatePrefixEnd(text: string, start: number, maxTokens: number): number {
  const n = text.length;
  // ceil(sum * MARGIN / FIXED) + CONSTANT <= maxTokens  <=>  sum * MARGIN <= (maxTokens - CONSTANT) * FIXED
  const cap = (maxTokens - CONSTANT) * FIXED;
  if (cap < 0) return start;
  let sum = 0;
  let state = OTHER;
  for (let i = start; i < n; i++) {
    const idx = state + (CLASS_OF[text.charCodeAt(i)] as number);
    sum += COST[idx] as number;
    if (sum * MARGIN > cap) return i;
    state = NEXT[idx] as number;
  }
  return n;
}

/**
 * estimateTokens of a text built by appending to it, each append costing only what it adds:
 * `new TokenTally().add(a).add(b).tokens === estimateTokens(a + b)`. The chunker asks, unit by
 * unit, whether a piece with one more unit still fits; counting the piece again for each unit made
 * that quadratic in the piece.
 */
export class TokenTally {
  #sum = 0;
  #state = OTHER;
  #length = 0;

  /** Appends `text.slice(from, to)` (without making it); returns this. */
  add(text: string, from = 0, to = text.length): this {
    let sum = this.#sum;
    let state = this.#state;
    for (let i = from; i < to; i++) {
      const idx = state + (CLASS_OF[text.charCodeAt(i)] as number);
      sum += COST[idx] as number;
      state = NEXT[idx] as number;
    }
    this.#sum = sum;
    this.#state = state;
    this.#length += Math.max(0, to - from);
    return this;
  }

  /** estimateTokens of everything appended. */
  get tokens(): number {
    return this.#length === 0 ? 0 : Math.ceil((this.#sum * MARGIN) / FIXED) + CONSTANT;
  }

  /** Makes this what `other` is; returns this. */
  setTo(other: TokenTally): this {
    this.#sum = other.#sum;
    this.#state = other.#state;
    this.#length = other.#length;
    return this;
  }

  clear(): this {
    this.#sum = 0;
    this.#state = OTHER;
    this.#length = 0;
    return this;
  }
}
