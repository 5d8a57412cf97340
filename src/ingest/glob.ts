/**
 * `--glob`: a shell-style pattern (`*`, `**`, `?`, `{a,b}`) over `/`-separated relative paths,
 * case-insensitive. `*` and `?` stay within a name, `**` crosses folders (`**` then `/` also
 * matches no folder at all), `{a,b}` is one of its words, each a pattern (`{*.pdf,scans/**}`;
 * braces nest); anything else is itself (`[` too, and a `{` without its `}`).
 *
 * Matched as a set of positions in the pattern advanced together over the path (Thompson's
 * construction), so a match costs at most (2 x pattern length + 1) x path length steps. Was: a
 * RegExp, whose backtracking took time to the power of the number of `**` on a path that nearly
 * matched: `**a` five times then `**b` against a name of 100 `a`s took 11 s, six times over a
 * minute, the walk stuck on that one name.
 */

const NONE = 0;
/** One given character (case-folded). */
const CHAR = 1;
/** Any character but `/`. */
const NAME_CHAR = 2;

const LOOP_NONE = 0;
/** Stays on any character but `/` (`*`). */
const LOOP_NAME = 1;
/** Stays on any character (`**`). */
const LOOP_ANY = 2;

const SLASH = 0x2f;

export interface GlobMatcher {
  /** True when the whole of `path` matches. */
  test(path: string): boolean;
  /** Pattern positions looked at over every test so far (each at most once a character). */
  readonly steps: number;
}

/** The pattern compiled once; `test` as often as there are paths. */
export function compileGlob(glob: string): GlobMatcher {
  return new Glob(glob);
}

class Glob implements GlobMatcher {
  // State s: an edge of kind edge[s] (on char[s] for CHAR) to to[s], a loop of kind loop[s], and
  // empty moves eps[s], each to a later state: closing over them is one pass in state order.
  readonly #edge: number[] = [];
  readonly #char: number[] = [];
  readonly #to: number[] = [];
  readonly #loop: number[] = [];
  readonly #eps: number[][] = [];
  readonly #accept: number;
  steps = 0;

  constructor(glob: string) {
    this.#accept = this.#sequence(glob, 0, glob.length, this.#state());
  }

  /** The states for `glob[from, to)` after state `cur`; returns the state it ends in. */
  #sequence(glob: string, from: number, to: number, cur: number): number {
    for (let i = from; i < to; i++) {
      const c = glob[i] as string;
      if (c === '*' && glob[i + 1] === '*' && i + 1 < to) {
        if (glob[i + 2] === '/' && i + 2 < to) {
          // `**/`: nothing, or anything that ends with `/`.
          const any = this.#state(LOOP_ANY);
          const end = this.#state();
          this.#edgeTo(any, CHAR, SLASH, end);
          this.#eps[cur]?.push(any, end);
          cur = end;
          i += 2;
        } else {
          const any = this.#state(LOOP_ANY);
          this.#eps[cur]?.push(any);
          cur = any;
          i += 1;
        }
      } else if (c === '*') {
        const name = this.#state(LOOP_NAME);
        this.#eps[cur]?.push(name);
        cur = name;
      } else if (c === '?') cur = this.#step(cur, NAME_CHAR, 0);
      else if (c === '{' && closingBrace(glob, i, to) > 0) {
        // One of its words, each a pattern of its own (`{*.pdf,scans/**}`, nested braces too).
        const close = closingBrace(glob, i, to);
        // The end state comes after every word's states: empty moves only go forward (#close).
        const ends = words(glob, i + 1, close).map(([a, b]) => this.#sequence(glob, a, b, this.#fork(cur)));
        const end = this.#state();
        for (const e of ends) this.#eps[e]?.push(end);
        cur = end;
        i = close;
      } else cur = this.#step(cur, CHAR, fold(glob.charCodeAt(i)));
    }
    return cur;
  }

  /** A new state reached from `from` by an empty move. */
  #fork(from: number): number {
    const at = this.#state();
    this.#eps[from]?.push(at);
    return at;
  }

  #state(loop = LOOP_NONE): number {
    this.#edge.push(NONE);
    this.#char.push(0);
    this.#to.push(-1);
    this.#loop.push(loop);
    this.#eps.push([]);
    return this.#edge.length - 1;
  }

  #edgeTo(from: number, kind: number, char: number, to: number): void {
    this.#edge[from] = kind;
    this.#char[from] = char;
    this.#to[from] = to;
  }

  /** A new state reached from `from` on one character. */
  #step(from: number, kind: number, char: number): number {
    const to = this.#state();
    this.#edgeTo(from, kind, char, to);
    return to;
  }

  test(path: string): boolean {
    const n = this.#edge.length;
    let on = new Uint8Array(n);
    let next = new Uint8Array(n);
    on[0] = 1;
    this.#close(on);
    for (let i = 0; i < path.length; i++) {
      const c = path.charCodeAt(i);
      const folded = fold(c);
      next.fill(0);
      let any = false;
      for (let s = 0; s < n; s++) {
        if (!on[s]) continue;
        this.steps += 1;
        const loop = this.#loop[s];
        if (loop === LOOP_ANY || (loop === LOOP_NAME && c !== SLASH)) next[s] = 1;
        const edge = this.#edge[s];
        if ((edge === CHAR && this.#char[s] === folded) || (edge === NAME_CHAR && c !== SLASH)) next[this.#to[s] as number] = 1;
        any = true;
      }
      if (!any) return false;
      this.#close(next);
      [on, next] = [next, on];
    }
    return on[this.#accept] === 1;
  }

  /** Adds what empty moves reach (they only go forward: one pass). */
  #close(on: Uint8Array): void {
    for (let s = 0; s < on.length; s++) if (on[s]) for (const t of this.#eps[s] as number[]) on[t] = 1;
  }
}

/** The `}` closing the `{` at `open` (braces nest), before `to`; -1 when there is none. */
function closingBrace(glob: string, open: number, to: number): number {
  let depth = 0;
  for (let i = open; i < to; i++) {
    if (glob[i] === '{') depth += 1;
    else if (glob[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

/** The `,`-separated words of `glob[from, to)` at its own brace depth, as [start, end) ranges. */
function words(glob: string, from: number, to: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let depth = 0;
  let start = from;
  for (let i = from; i < to; i++) {
    if (glob[i] === '{') depth += 1;
    else if (glob[i] === '}') depth -= 1;
    else if (glob[i] === ',' && depth === 0) {
      out.push([start, i]);
      start = i + 1;
    }
  }
  out.push([start, to]);
  return out;
}

const folded = new Map<number, number>();

/**
 * A UTF-16 unit as a case-insensitive RegExp without `u` compares it (its upper case when that is
 * one unit, not mapping a non-ASCII unit onto ASCII), so matching stays as it was.
 */
function fold(c: number): number {
  if (c < 128) return c >= 97 && c <= 122 ? c - 32 : c;
  let f = folded.get(c);
  if (f === undefined) {
    const upper = String.fromCharCode(c).toUpperCase();
    f = upper.length === 1 && upper.charCodeAt(0) >= 128 ? upper.charCodeAt(0) : c;
    folded.set(c, f);
  }
  return f;
}
