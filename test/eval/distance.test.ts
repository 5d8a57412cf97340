/**
 * Edit distance: hand-worked pairs, the bit-parallel sweep against the textbook two-row dynamic
 * programme on thousands of random pairs (lengths across the 32-row block edges), and patience
 * anchoring for long texts: never below the exact distance, equal to it on transcription-like edits.
 */
import { describe, expect, it } from 'vitest';
import { anchoredDistance, longestIncreasing, type Token } from '../../src/eval/align.ts';
import { editDistance } from '../../src/eval/distance.ts';
import { textCounts } from '../../src/eval/text.ts';

const cps = (s: string) => Array.from(s, (c) => c.codePointAt(0)!);

/** The textbook O(n·m) dynamic programme, two rows. */
function reference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** A seeded generator (LCG), so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('editDistance', () => {
  it.each([
    ['kitten', 'sitting', 3],
    ['sitting', 'kitten', 3],
    ['flaw', 'lawn', 2],
    ['', 'abc', 3],
    ['abc', '', 3],
    ['', '', 0],
    ['same', 'same', 0],
    ['abc', 'xyz', 3],
    ['intention', 'execution', 5],
    ['naïve café', 'naive cafe', 2],
    ['😀a', 'a', 1], // code points, not UTF-16 units
  ])('%j → %j = %i', (a, b, d) => {
    expect(editDistance(cps(a), cps(b))).toBe(d);
  });

  it('matches the two-row programme on random pairs across block edges', () => {
    const rand = rng(42);
    const lengths = [0, 1, 31, 32, 33, 63, 64, 65, 100, 200];
    for (let t = 0; t < 2000; t++) {
      const alphabet = 1 + Math.floor(rand() * 8);
      const la = lengths[Math.floor(rand() * lengths.length)]! + Math.floor(rand() * 3);
      const a = Array.from({ length: la }, () => Math.floor(rand() * alphabet) * 7919);
      const b =
        rand() < 0.5
          ? Array.from({ length: Math.floor(rand() * 220) }, () => Math.floor(rand() * alphabet) * 7919)
          : a.flatMap((x) => (rand() < 0.05 ? [] : rand() < 0.05 ? [x, 1] : rand() < 0.1 ? [2] : [x]));
      expect(editDistance(a, b), `pair ${t}`).toBe(reference(a, b));
    }
  });

  it('takes any integers as symbols (word ids), negative ones too', () => {
    expect(editDistance([5, -1, 1e9, 7], [5, 1e9, 7, 8])).toBe(2);
  });
});

describe('longestIncreasing', () => {
  it.each([
    [[], []],
    [[3], [0]],
    [[1, 2, 3], [0, 1, 2]],
    [[3, 2, 1], [2]],
    [[0, 8, 4, 12, 2, 10, 6, 14, 1, 9], [0, 4, 6, 9]],
  ])('%j → a longest run at %j', (v, expected) => {
    const got = longestIncreasing(v);
    expect(got).toHaveLength(expected.length);
    for (let i = 1; i < got.length; i++) expect(v[got[i]!]!).toBeGreaterThan(v[got[i - 1]!]!);
  });
});

describe('anchoredDistance', () => {
  /** Code points of words joined by spaces, and the words' spans (word ids from `ids`). */
  function text(words: string[], ids: Map<string, number>): { cps: Int32Array; tokens: Token[] } {
    const tokens: Token[] = [];
    let at = 0;
    for (const w of words) {
      if (!ids.has(w)) ids.set(w, ids.size);
      tokens.push({ key: ids.get(w)!, start: at, end: at + [...w].length });
      at += [...w].length + 1;
    }
    return { cps: Int32Array.from(cps(words.join(' '))), tokens };
  }

  function corpus(seed: number, n: number): string[] {
    const rand = rng(seed);
    const common = ['the', 'of', 'and', 'a', 'to', 'in', 'is', 'was'];
    return Array.from({ length: n }, (_, i) => (rand() < 0.5 ? common[Math.floor(rand() * common.length)]! : `w${i}x${Math.floor(rand() * 1000)}`));
  }

  it('equals the exact distance on transcription-like edits, with a budget that forces anchoring', () => {
    const rand = rng(7);
    const truthWords = corpus(1, 400);
    const outWords = truthWords.flatMap((w) => (rand() < 0.03 ? [] : rand() < 0.05 ? [w.replace(/.$/, 'Q')] : rand() < 0.02 ? [w, 'extra'] : [w]));
    const ids = new Map<string, number>();
    const t = text(truthWords, ids);
    const o = text(outWords, ids);
    const exact = editDistance(t.cps, o.cps);
    const anchored = anchoredDistance(t.cps, o.cps, t.tokens, o.tokens, 2000);
    expect(anchored.exact).toBe(false);
    expect(anchored.distance).toBe(exact);
    expect(exact).toBeGreaterThan(20);
  });

  it('takes a word as an anchor only when its neighbours match too: chance matches in noisy text do not pull the alignment off', () => {
    // Short words over ten letters with 15 % character noise: garbled words often equal some
    // other word that is unique in both texts. Anchoring on those alone overcounted by up to 3.6 %.
    const common = ['the', 'of', 'and', 'a', 'to', 'in', 'is', 'was', 'it', 'on', 'be', 'at'];
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const rand = rng(seed);
      const words = Array.from({ length: 4000 }, () => (rand() < 0.5 ? common[Math.floor(rand() * common.length)]! : Array.from({ length: 2 + Math.floor(rand() * 4) }, () => 'abcdefghij'[Math.floor(rand() * 10)]).join('')));
      const truth = words.join(' ');
      const noise = rng(seed + 100);
      let output = '';
      for (const ch of truth) {
        const r = noise();
        if (r < 0.15) output += 'abcdefghijklmnopqrstuvwxyz'[Math.floor(noise() * 26)];
        else if (r >= 0.2) output += ch;
        if (noise() < 0.05) output += 'abcdefghijklmnopqrstuvwxyz'[Math.floor(noise() * 26)];
      }
      const anchored = textCounts(truth, output, false, 1e5);
      expect(anchored.exact, `seed ${seed}`).toBe(false);
      expect(anchored.char_edits, `seed ${seed}`).toBe(textCounts(truth, output, false, Number.POSITIVE_INFINITY).char_edits);
    }
  });

  it('is never below the exact distance, even when text moved', () => {
    const words = corpus(3, 300);
    const moved = [...words.slice(150), ...words.slice(0, 150)];
    const ids = new Map<string, number>();
    const t = text(words, ids);
    const o = text(moved, ids);
    const anchored = anchoredDistance(t.cps, o.cps, t.tokens, o.tokens, 2000);
    expect(anchored.distance).toBeGreaterThanOrEqual(editDistance(t.cps, o.cps));
  });

  it('measures exactly within the budget, and when there is no anchor', () => {
    const ids = new Map<string, number>();
    const t = text(['aaa', 'aaa', 'bbb'], ids);
    const o = text(['ccc', 'ccc'], ids);
    expect(anchoredDistance(t.cps, o.cps, t.tokens, o.tokens)).toEqual({ distance: editDistance(t.cps, o.cps), exact: true });
    expect(anchoredDistance(t.cps, o.cps, t.tokens, o.tokens, 1)).toEqual({ distance: editDistance(t.cps, o.cps), exact: true });
  });
});
