/**
 * Node's compile cache lives per user, never in a shared /tmp folder another user could create
 * first and fill with entries V8 would run as code: bin/docbatch puts it under XDG_CACHE_HOME
 * (else ~/.cache), and renderer and inspection children use the folder their parent names
 * (their own default would be /tmp/node-compile-cache).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PdfInspector } from '../../src/ingest/pdf.ts';
import { childCompileCacheDir } from '../../src/render/compile-cache.ts';
import { childPids, corpusFile, tempDir } from '../render/fixtures.ts';
import { BIN } from '../helpers/cli.ts';

const tmp = tempDir('compile-cache');
afterAll(() => tmp.cleanup());

/** Files anywhere under `dir`. */
const files = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name) : []);

describe('the compile cache folder', () => {
  it('bin/docbatch keeps it under ~/.cache, or XDG_CACHE_HOME when set', () => {
    const home = join(tmp.dir, 'home');
    const run = spawnSync(BIN, ['--help'], { env: { PATH: process.env.PATH, HOME: home }, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(files(join(home, '.cache/docbatch/node-compile-cache')).length).toBeGreaterThan(0);

    const xdg = join(tmp.dir, 'xdg');
    const again = spawnSync(BIN, ['--help'], { env: { PATH: process.env.PATH, HOME: home, XDG_CACHE_HOME: xdg }, encoding: 'utf8' });
    expect(again.status, again.stderr).toBe(0);
    expect(files(join(xdg, 'docbatch/node-compile-cache')).length).toBeGreaterThan(0);
  });

  it('children follow the rule bin/docbatch follows', () => {
    expect(childCompileCacheDir({ NODE_COMPILE_CACHE: '/c', XDG_CACHE_HOME: '/x', HOME: '/h' })).toBe('/c');
    expect(childCompileCacheDir({ XDG_CACHE_HOME: '/x', HOME: '/h' })).toBe('/x/docbatch/node-compile-cache');
    expect(childCompileCacheDir({ XDG_CACHE_HOME: 'relative', HOME: '/h' })).toBe('/h/.cache/docbatch/node-compile-cache');
    expect(childCompileCacheDir({ HOME: '/' })).toBeUndefined();
    expect(childCompileCacheDir({})).toBeUndefined();
    expect(childCompileCacheDir({ NODE_DISABLE_COMPILE_CACHE: '1', HOME: '/h' })).toBeUndefined();
  });

  it('bin/docbatch uses no cache without a home, and ignores a relative XDG_CACHE_HOME', () => {
    const cwd = join(tmp.dir, 'cwd');
    const home = join(tmp.dir, 'home2');
    mkdirSync(cwd, { recursive: true });
    const run = spawnSync(BIN, ['--help'], { cwd, env: { PATH: process.env.PATH, HOME: home, XDG_CACHE_HOME: 'rel' }, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(files(join(home, '.cache/docbatch/node-compile-cache')).length).toBeGreaterThan(0);
    expect(existsSync(join(cwd, 'rel'))).toBe(false);
    const homeless = spawnSync(BIN, ['--help'], { cwd, env: { PATH: process.env.PATH }, encoding: 'utf8' });
    expect(homeless.status, homeless.stderr).toBe(0);
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('an inspection child uses the folder its parent names', async () => {
    const saved = { XDG_CACHE_HOME: process.env.XDG_CACHE_HOME, NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE };
    const xdg = join(tmp.dir, 'children');
    process.env.XDG_CACHE_HOME = xdg;
    delete process.env.NODE_COMPILE_CACHE;
    const inspector = new PdfInspector();
    try {
      const before = childPids('inspect');
      expect((await inspector.inspect(corpusFile('sizes.pdf'), { file: 'sizes.pdf' })).pages).toBe(3);
      const [pid] = childPids('inspect').filter((p) => !before.includes(p));
      // The folder is the child's NODE_COMPILE_CACHE, which Node reads before it loads child.ts,
      // so that child.ts itself comes from the cache too (types stripped, V8's code).
      const environ = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
      const expected = join(xdg, 'docbatch/node-compile-cache');
      expect(environ).toContain(`NODE_COMPILE_CACHE=${expected}`);
      await inspector.close();
      expect(files(expected).length).toBeGreaterThan(0);
    } finally {
      await inspector.close();
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });
});
