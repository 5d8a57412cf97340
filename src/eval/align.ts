/**
 * Edit distance between long texts that have no page markers (a whole book against its
 * transcription), where the exact O(m·n/32) sweep of distance.ts would take minutes. Pure.
 *
 * Patience anchoring (as in `git diff --patience`): the words that occur exactly once in each
 * text are candidate anchors; the longest run of them in the same order in both is kept, the
 * anchors are taken as matched, and the distance is the sum of the exact distances of the gaps
 * between them, each gap anchored again if it is still too large. A gap up to `budget` cells
 * (m·n) is measured exactly. The result is the cost of a valid alignment, so it is never below
 * the true distance; it equals it whenever an optimal alignment keeps the anchors matched, which
 * is the case for transcriptions (a unique word in both, in order, is the same word). When
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
    if (sa.length * sb.length <= budget) {
      distance += editDistance(sa, sb);
      continue;
    }
    const anchors = uniqueCommonInOrder(within(ta, a0, a1), within(tb, b0, b1));
    if (anchors.length === 0) {
      distance += editDistance(sa, sb);
      continue;
    }
    exact = false;
    let pa = a0;
    let pb = b0;
    for (const [x, y] of anchors) {
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

/** Pairs of tokens unique in both lists, the longest chain of them in the same order in both. */
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
  const pairs: Array<[number, number]> = [];
  for (const e of seen.values()) if (e.a === 1 && e.b === 1) pairs.push([e.ia, e.ib]);
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
