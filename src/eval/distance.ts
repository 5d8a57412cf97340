/**
 * Levenshtein distance (insertions, deletions, substitutions, each costing 1) between two
 * sequences of integers: code points for characters, word ids for words. Pure.
 *
 * Exact, with Myers' bit-parallel algorithm (Myers 1999, "A fast bit-vector algorithm for
 * approximate string matching based on dynamic programming"; the multi-word form of Hyyrö 2003):
 * the shorter sequence is cut into blocks of 32 rows, and each block sweeps the longer sequence
 * once, carrying the horizontal differences of its bottom row to the next block in two bit
 * arrays. Time O(⌈m/32⌉·n), memory O(n/32 + alphabet). A common prefix and suffix are removed
 * first, so near-identical texts cost little.
 */

/** Exact edit distance between `a` and `b`. */
export function editDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const [x, y] = trimCommon(a, b);
  if (x.length === 0) return y.length;
  if (y.length === 0) return x.length;
  return x.length <= y.length ? myers(x, y) : myers(y, x);
}

/** `a` and `b` without their common prefix and suffix. */
export function trimCommon(a: ArrayLike<number>, b: ArrayLike<number>): [Int32Array, Int32Array] {
  let start = 0;
  let endA = a.length;
  let endB = b.length;
  while (start < endA && start < endB && a[start] === b[start]) start++;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  return [slice(a, start, endA), slice(b, start, endB)];
}

function slice(v: ArrayLike<number>, from: number, to: number): Int32Array {
  if (v instanceof Int32Array) return v.subarray(from, to);
  const out = new Int32Array(to - from);
  for (let i = from; i < to; i++) out[i - from] = v[i]!;
  return out;
}

/** Distance between `pattern` (the shorter, down the rows) and `text` (across the columns). */
function myers(patternIn: Int32Array, textIn: Int32Array): number {
  const m = patternIn.length;
  const n = textIn.length;
  // Dense symbol ids: the pattern's symbols are 1..k; a text symbol not in the pattern is 0,
  // whose match mask is always empty.
  const ids = new Map<number, number>();
  const pattern = new Int32Array(m);
  for (let i = 0; i < m; i++) {
    const s = patternIn[i]!;
    let id = ids.get(s);
    if (id === undefined) ids.set(s, (id = ids.size + 1));
    pattern[i] = id;
  }
  const text = new Int32Array(n);
  for (let i = 0; i < n; i++) text[i] = ids.get(textIn[i]!) ?? 0;

  const peq = new Int32Array(ids.size + 1);
  // Horizontal deltas (+1 / -1) of the bottom row of the previous block, one bit per column;
  // above the first block they are all +1 (row 0 of the matrix is 0, 1, 2, ...).
  const words = (n + 31) >>> 5;
  const phc = new Int32Array(words).fill(-1);
  const mhc = new Int32Array(words);
  const blocks = (m + 31) >>> 5;
  let score = m;
  for (let block = 0; block < blocks; block++) {
    const start = block << 5;
    const end = Math.min(start + 32, m);
    for (let k = start; k < end; k++) {
      const id = pattern[k]!;
      peq[id] = peq[id]! | (1 << (k - start));
    }
    const last = block === blocks - 1;
    const bottom = end - start - 1;
    let pv = -1;
    let mv = 0;
    for (let i = 0; i < n; i++) {
      const eq = peq[text[i]!]!;
      const w = i >>> 5;
      const bit = i & 31;
      const pb = (phc[w]! >>> bit) & 1;
      const mb = (mhc[w]! >>> bit) & 1;
      const xv = eq | mv;
      const xh = ((((eq | mb) & pv) + pv) ^ pv) | eq | mb;
      let ph = mv | ~(xh | pv);
      let mh = pv & xh;
      if (last) {
        score += (ph >>> bottom) & 1;
        score -= (mh >>> bottom) & 1;
      } else {
        if (((ph >>> 31) ^ pb) !== 0) phc[w] = phc[w]! ^ (1 << bit);
        if (((mh >>> 31) ^ mb) !== 0) mhc[w] = mhc[w]! ^ (1 << bit);
      }
      ph = (ph << 1) | pb;
      mh = (mh << 1) | mb;
      pv = mh | ~(xv | ph);
      mv = ph & xv;
    }
    for (let k = start; k < end; k++) peq[pattern[k]!] = 0;
  }
  return score;
}
