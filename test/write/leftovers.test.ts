/**
 * LocalSink's removal of temporaries left by writers that died mid-write (src/write/atomic.ts),
 * on a real folder. A write removes its folder's stale temporaries, but lists a folder at most
 * once per `leftoverAfterMs`: listing a folder of 100,000 outputs takes ~0.1 s, which must not
 * be paid by every write.
 */
import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { LocalSink, sweepTemporaries } from '../../src/write/atomic.ts';

let dir: string | undefined;
afterEach(() => {
  vi.useRealTimers();
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

/** A temporary whose mtime is `mtimeMs` (the folder's clock: this is a local disk, so the real time). */
function stamped(folder: string, name: string, mtimeMs: number): string {
  const path = join(folder, name);
  writeFileSync(path, 'half a pa');
  utimesSync(path, new Date(mtimeMs), new Date(mtimeMs));
  return path;
}

/**
 * OUT_DIR shared by several machines (NFS): file times are the file server's, and a machine's
 * clock may be minutes off it. Ages are told by the folder's own clock, not this machine's:
 * a clock ahead took another writer's temporary, still being written, for a dead one (and the
 * hourly sweep did the same past an hour); a clock behind never removed a dead one.
 */
it("a temporary's age is told by the folder's clock: a machine clock minutes off it neither takes a live one nor keeps a dead one", async () => {
  dir = mkdtempSync(join(tmpdir(), 'docbatch-leftovers-'));
  const real = Date.now();
  // This machine's clock 10 minutes ahead of the folder's: the other writer's temporary is fresh.
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(real + 10 * 60_000);
  const ahead = new LocalSink(dir, { leftoverAfterMs: 60_000 });
  const live = stamped(dir, '.big.md.tmp-4242-0badcafe', real);
  const dead = stamped(dir, '.old.md.tmp-4243-1badcafe', real - 2 * 60_000);
  await ahead.writeWhole('a.md', 'A');
  expect(existsSync(live)).toBe(true);
  expect(existsSync(dead)).toBe(false);

  // 10 minutes behind: a temporary untouched for two minutes by the folder's clock is dead.
  vi.setSystemTime(real - 10 * 60_000);
  const behind = new LocalSink(dir, { leftoverAfterMs: 60_000 });
  const dead2 = stamped(dir, '.old2.md.tmp-4244-2badcafe', real - 2 * 60_000);
  await behind.writeWhole('b.md', 'B');
  expect(existsSync(dead2)).toBe(false);
  expect(existsSync(live)).toBe(true);

  // The hourly sweep, this machine's clock two hours ahead: only what is an hour old by the folder goes.
  vi.setSystemTime(real + 2 * 3_600_000);
  const hourOld = stamped(dir, '.x.md.tmp-4245-3badcafe', real - 3_600_000 - 60_000);
  expect(await sweepTemporaries(dir, 3_600_000)).toBe(1);
  expect(existsSync(hourOld)).toBe(false);
  expect(existsSync(live)).toBe(true);
  expect(existsSync(join(dir, 'a.md'))).toBe(true);
});
