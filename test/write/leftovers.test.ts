/**
 * LocalSink's removal of temporaries left by writers that died mid-write (src/write/atomic.ts),
 * on a real folder. A write removes its folder's stale temporaries, but lists a folder at most
 * once per `leftoverAfterMs`: listing a folder of 100,000 outputs takes ~0.1 s, which must not
 * be paid by every write.
 */
import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { LocalSink } from '../../src/write/atomic.ts';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function leftover(folder: string, name: string, ageMs: number): string {
  const path = join(folder, name);
  writeFileSync(path, 'half a pa');
  const then = new Date(Date.now() - ageMs);
  utimesSync(path, then, then);
  return path;
}

it('a write removes stale temporaries of its folder, listing the folder at most once per interval', async () => {
  dir = mkdtempSync(join(tmpdir(), 'docbatch-leftovers-'));
  const sink = new LocalSink(dir, { leftoverAfterMs: 400 });
  const dead = leftover(dir, '.a.md.tmp-99999-0badcafe', 5000);
  const fresh = leftover(dir, '.b.md.tmp-99998-1badcafe', 0);
  const notOurs = leftover(dir, '.a.md.tmp-keep', 5000);
  await sink.writeWhole('a.md', 'A');
  expect(existsSync(dead)).toBe(false);
  expect(existsSync(fresh)).toBe(true); // its writer may still be writing
  expect(existsSync(notOurs)).toBe(true); // not a name docbatch gives its temporaries

  // Within the interval, writes do not list the folder again: a leftover appearing now stays...
  const later = leftover(dir, '.c.md.tmp-99997-2badcafe', 5000);
  for (const name of ['b.md', 'c.md', 'd.md']) await sink.writeWhole(name, name);
  expect(existsSync(later)).toBe(true);
  // ...until the interval has passed.
  await new Promise((r) => setTimeout(r, 450));
  await sink.writeWhole('e.md', 'E');
  expect(existsSync(later)).toBe(false);
  expect(existsSync(join(dir, 'c.md'))).toBe(true);

  // Another folder is listed on its own clock.
  const sub = join(dir, 'sub');
  await sink.writeWhole('sub/x.md', 'X');
  const inSub = leftover(sub, '.y.md.tmp-99996-3badcafe', 5000);
  await new Promise((r) => setTimeout(r, 450));
  await sink.writeWhole('sub/z.md', 'Z');
  expect(existsSync(inSub)).toBe(false);
});
