/**
 * `--glob` (src/ingest/glob.ts): what a pattern matches, and what a match costs. Was a RegExp:
 * several `**` backtracked, time to the power of their number on a path that nearly matched
 * (`**a` five times then `**b` on a name of 100 `a`s: 11 s, the walk stuck on one name).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileGlob } from '../../src/ingest/glob.ts';
import { walkInputs } from '../../src/ingest/walk.ts';

const dir = mkdtempSync(join(tmpdir(), 'docbatch-glob-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('--glob', () => {
  it('matches as the shell-style pattern says: * and ? within a name, ** across folders, {a,b}, case-insensitive, newlines in names', () => {
    const cases: Array<[string, string, boolean]> = [
      ['*.pdf', 'a.pdf', true],
      ['*.pdf', 'dir/a.pdf', false],
      ['**/*.pdf', 'a.pdf', true],
      ['**/*.pdf', 'x/y/z/a.PDF', true],
      ['**/*.pdf', 'x/y/a.pdf.txt', false],
      ['**.pdf', 'x/y/a.pdf', true],
      ['x/**/a.pdf', 'x/a.pdf', true],
      ['x/**/a.pdf', 'x/y/z/a.pdf', true],
      ['x/**/a.pdf', 'xa.pdf', false],
      ['?.pdf', 'a.pdf', true],
      ['?.pdf', '/.pdf', false],
      ['?.pdf', 'ab.pdf', false],
      ['*.{pdf,png}', 'scan.png', true],
      ['*.{pdf,png}', 'scan.jpg', false],
      ['a{,b}.pdf', 'a.pdf', true],
      ['a{,b}.pdf', 'ab.pdf', true],
      ['{a.pdf', '{a.pdf', true],
      ['{*.pdf,scans/**/*.png}', 'x.pdf', true],
      ['{*.pdf,scans/**/*.png}', 'scans/2024/a.png', true],
      ['{*.pdf,scans/**/*.png}', 'other/a.png', false],
      ['{*.pdf,scans/**/*.png}', 'a/x.pdf', false],
      ['**/*.{pdf,{tif,tiff}}', 'a/b.tiff', true],
      ['**/*.{pdf,{tif,tiff}}', 'a/b.tifff', false],
      ['{?,??}.pdf', 'ab.pdf', true],
      ['{?,??}.pdf', 'abc.pdf', false],
      ['[ab].pdf', '[ab].pdf', true],
      ['[ab].pdf', 'a.pdf', false],
      ['a+b(1).pdf', 'A+B(1).pdf', true],
      ['**/*.pdf', 'two\nlines/inside.pdf', true],
      ['*', 'two\nlines', true],
      ['Ärger/*.pdf', 'ärger/x.pdf', true],
      ['', '', true],
      ['', 'a', false],
    ];
    for (const [glob, path, expected] of cases) expect(compileGlob(glob).test(path), `${JSON.stringify(glob)} ~ ${JSON.stringify(path)}`).toBe(expected);
  });

  it('a pattern of many ** against a path that nearly matches: at most (2 x pattern + 1) steps a character', () => {
    for (const k of [2, 6, 12, 24]) {
      const glob = `${'**a'.repeat(k)}**b`;
      for (const path of ['a'.repeat(500), `${'a/'.repeat(250)}c`, `${'a'.repeat(499)}b`]) {
        const matcher = compileGlob(glob);
        const matches = matcher.test(path);
        expect(matches).toBe(path.endsWith('b') && path.split('a').length - 1 >= k);
        expect(matcher.steps).toBeGreaterThan(0);
        expect(matcher.steps).toBeLessThanOrEqual((2 * glob.length + 1) * path.length);
      }
    }
  });

  it('a folder walked with such a pattern finishes in moments and keeps what matches', async () => {
    const folder = join(dir, 'walk');
    mkdirSync(join(folder, 'sub'), { recursive: true });
    writeFileSync(join(folder, `${'a'.repeat(100)}`), 'x');
    writeFileSync(join(folder, 'sub', `${'a'.repeat(98)}b`), 'x');
    const found: string[] = [];
    // `**a` five times then `**b`: the RegExp took ~11 s on the first name.
    for await (const f of walkInputs([folder], { glob: `${'**a'.repeat(5)}**b` })) found.push(f.path);
    expect(found).toEqual([join(folder, 'sub', `${'a'.repeat(98)}b`)]);
    // A bound of time only as the backstop of the step count above, 1,000 times what it takes.
  }, 5000);
});
