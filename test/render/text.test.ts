import { describe, expect, it } from 'vitest';
import { joinTextRuns, type TextRun } from '../../src/render/text.ts';

const run = (str: string, x: number, y: number, opts: Partial<TextRun> = {}): TextRun => ({
  str,
  transform: [10, 0, 0, 10, x, y],
  width: str.length * 5,
  height: 10,
  hasEOL: false,
  ...opts,
});

describe('joinTextRuns', () => {
  it('breaks lines at hasEOL', () => {
    expect(joinTextRuns([run('Hello', 0, 100, { hasEOL: true }), run('world', 0, 88)])).toBe('Hello\nworld');
  });

  it('breaks lines when the baseline moves, even without hasEOL', () => {
    expect(joinTextRuns([run('first', 0, 100), run('second', 0, 80)])).toBe('first\nsecond');
  });

  it('keeps runs of one line together, with a space only at a visible gap', () => {
    // "Hel" ends at x=15; "lo" starts there: one word. "there" starts 10 pt later: a new word.
    expect(joinTextRuns([run('Hel', 0, 100), run('lo', 15, 100), run('there', 35, 100)])).toBe('Hello there');
  });

  it('does not double spaces that the PDF already has', () => {
    expect(joinTextRuns([run('a ', 0, 100), run('b', 40, 100)])).toBe('a b');
  });

  it('follows rotated text along its own direction', () => {
    const up = (str: string, x: number, y: number, hasEOL = false): TextRun => ({ str, transform: [0, 10, -10, 0, x, y], width: str.length * 5, height: 10, hasEOL });
    // Two runs on one vertical baseline (x = 50), then a run on the next line (x = 35).
    expect(joinTextRuns([up('abc', 50, 0), up('def', 50, 15), up('next', 35, 0)])).toBe('abcdef\nnext');
  });

  it('skips marked-content items and collapses blank lines', () => {
    const items = [
      run('title', 0, 200, { hasEOL: true }),
      { type: 'beginMarkedContent' },
      run('', 0, 190, { hasEOL: true }),
      run('', 0, 180, { hasEOL: true }),
      run('body', 0, 170, { hasEOL: true }),
      run('', 0, 160, { hasEOL: true }),
    ];
    expect(joinTextRuns(items)).toBe('title\n\nbody');
  });

  it('gives an empty string for a page without text', () => {
    expect(joinTextRuns([])).toBe('');
  });

  it('sees white space at the end of the line as the line is built: an empty run, a no-break space, a space run', () => {
    expect(joinTextRuns([run('a', 0, 100), run('', 5, 100), run('b', 40, 100)])).toBe('a b');
    expect(joinTextRuns([run('a\u00a0', 0, 100), run('b', 40, 100)])).toBe('a\u00a0b');
    expect(joinTextRuns([run('a', 0, 100), run(' ', 5, 100), run('b', 40, 100)])).toBe('a b');
    expect(joinTextRuns([run('a', 0, 100, { hasEOL: true }), run('b', 40, 100)])).toBe('a\nb');
  });

  it('joins a line of 160,000 one-character runs (PDFium gives one a character) in linear time', () => {
    // Testing the line built so far for a trailing space at every run made this quadratic:
    // 23.6 s for this line on a 2-core VM (0.2 s now); a renderer has 30 s for a whole page.
    const n = 160_000;
    const runs = Array.from({ length: n }, (_, i) => ({ str: i % 6 === 5 ? ' ' : 'x', transform: [1, 0, 0, 1, i * 5, 100], width: 5, height: 10, hasEOL: false }));
    const started = performance.now();
    const text = joinTextRuns(runs);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(text).toBe(runs.map((r) => r.str).join('').trimEnd());
  });
});
