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
});
