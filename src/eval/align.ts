/**
 * Edit distance between long texts that have no page markers (a whole book against its
 * transcription), where the exact O(m·n/32) sweep of distance.ts would take minutes. Pure.
 *
 * Patience anchoring (as in `git diff --patience`): the words that occur exactly once in each
 * text, and whose neighbours on both sides are the same words in both, are candidate anchors (a
 * lone unique word is too often a garbled word that happens to equal another in noisy output);
 * the longest run of them in the same order in both is kept, and of those only as many are used
 * as cut the texts into gaps of at most budget/200 cells (m·n) each. The anchors used are taken as
 * matched; the distance is the sum of the exact distances of the gaps between them, a gap still
 * larger being anchored again on the words unique within it. That is the cost of a valid
 * alignment, so it is never below the true distance; it equals it whenever an optimal alignment
 * keeps the anchors matched, which is the case for transcriptions (on all of freeculture.pdf with
 * 15 % character noise: the same 155,552 edits as the exact sweep; bench/eval-book.ts). When
 * anchoring was needed, `exact` is false.
 */
import { editDistance } from './distance.ts';

/** A word in a sequence: its id (equal words, equal ids) and its span [start, end). */
export interface Token {
  key: number;
  start: number;
  end: number;
}

export interface Distance {
  distance: number;
  /** False when patience anchoring was used (the distance may then exceed the true one). */
  exact: boolean;
}

/** 2·10⁹ cells: about half a second of the exact sweep on one core. */
export const EXACT_BUDGET = 2e9;

export function anchoredDistance(a: Int32Array, b: Int32Array, ta: Token[], tb: Token[], budget = EXACT_BUDGET): Distance {
  let distance = 0;
  let exact = true;
  const target = budget / 200;
  const stack: Array<[number, number, number, number]> = [[0, a.length, 0, b.length]];
  while (stack.length > 0) {
    let [a0, a1, b0, b1] = stack.pop()!;
    while (a0 < a1 && b0 < b1 && a[a0] === b[b0]) {
      a0++;
      b0++;
    }
    while (a1 > a0 && b1 > b0 && a[a1 - 1] === b[b1 - 1]) {
      a1--;
      b1--;
    }
    const sa = a.subarray(a0, a1);
    const sb = b.subarray(b0, b1);
    // The whole pair within the budget is measured exactly; once anchored, a gap is measured
    // when it is down to the target size, and anchored again (on the words unique within it) when not.
    if (sa.length * sb.length <= (exact ? budget : target)) {
      distance += editDistance(sa, sb);
      continue;
    }
    const anchors = uniqueCommonInOrder(within(ta, a0, a1), within(tb, b0, b1));
    if (anchors.length === 0) {
      distance += editDistance(sa, sb);
      continue;
    }
    exact = false;
    // Cut at as few anchors as keep each gap within the target: every cut forces the alignment
    // through a word's edges, so fewer cuts stay closer to the exact distance.
    let pa = a0;
    let pb = b0;
    for (let k = 0; k < anchors.length; k++) {
      const [x, y] = anchors[k]!;
      const next = anchors[k + 1];
      if (next && (next[0].start - pa) * (next[1].start - pb) <= target) continue;
      stack.push([pa, x.start, pb, y.start]);
      pa = x.end;
      pb = y.end;
    }
    stack.push([pa, a1, pb, b1]);
  }
  return { distance, exact };
}

/** The tokens lying wholly inside [from, to); `tokens` are sorted and do not overlap. */
function within(tokens: Token[], from: number, to: number): Token[] {
  let lo = 0;
  let hi = tokens.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (tokens[mid]!.start < from) lo = mid + 1;
    else hi = mid;
  }
  let end = lo;
  while (end < tokens.length && tokens[end]!.end <= to) end++;
  return tokens.slice(lo, end);
}

/**
 * Anchor pairs: tokens unique in both lists whose neighbours on both sides match too, the longest
 * chain of them in the same order in both. (Unique words alone anchored on chance matches of
 * garbled words: 0.7 % too many edits on freeculture.pdf with 15 % noise, up to 3.6 % on noisy short
 * words; falling back to one matching neighbour where none has two was up to 5.6 % off.)
 */
function uniqueCommonInOrder(ta: Token[], tb: Token[]): Array<[Token, Token]> {
  const seen = new Map<number, { a: number; b: number; ia: number; ib: number }>();
  ta.forEach((t, i) => {
    const e = seen.get(t.key);
    if (e) e.a++;
    else seen.set(t.key, { a: 1, b: 0, ia: i, ib: -1 });
  });
  tb.forEach((t, i) => {
    const e = seen.get(t.key);
    if (e) {
      e.b++;
      e.ib = i;
    }
  });
  const same = (i: number, j: number) => ta[i] !== undefined && tb[j] !== undefined && ta[i]!.key === tb[j]!.key;
  const pairs: Array<[number, number]> = [];
  for (const e of seen.values()) if (e.a === 1 && e.b === 1 && same(e.ia - 1, e.ib - 1) && same(e.ia + 1, e.ib + 1)) pairs.push([e.ia, e.ib]);
  pairs.sort((x, y) => x[0] - y[0]);
  return longestIncreasing(pairs.map((p) => p[1])).map((k) => [ta[pairs[k]![0]]!, tb[pairs[k]![1]]!]);
}

/** Indices into `v` of a longest strictly increasing subsequence (patience sorting, O(k log k)). */
export function longestIncreasing(v: number[]): number[] {
  const tails: number[] = [];
  const prev = new Int32Array(v.length).fill(-1);
  for (let i = 0; i < v.length; i++) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (v[tails[mid]!]! < v[i]!) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) prev[i] = tails[lo - 1]!;
    tails[lo] = i;
  }
  const out: number[] = [];
  for (let k = tails.length > 0 ? tails[tails.length - 1]! : -1; k >= 0; k = prev[k]!) out.push(k);
  return out.reverse();
}

