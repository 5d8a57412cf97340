/**
 * Bundles the docbatch command line into dist/ (rolldown), so a command starts without
 * resolving and reading ~400 module files: `docbatch enqueue` of 16 PDFs 0.86 -> 0.70 CPU s,
 * `enqueue --help` 0.36 -> 0.15 (docs/design.md, "Start-up"). Run by `npm install` (the
 * `prepare` script, through scripts/bundle.sh) and by hand after changing the sources:
 *
 *   node_modules/.bin/node scripts/bundle.ts [--out dist]
 *
 * bin/docbatch runs dist/main.js only while it is newer than every source file (and the
 * lock files); otherwise, or without a bundle, it runs the TypeScript sources as before. So a
 * bundle never runs code older than the sources beside it.
 *
 * Packages that find their own files at run time stay outside the bundle and load from
 * node_modules as before: native addons (sharp, @napi-rs/canvas, msgpackr-extract), wasm and
 * asset folders (@hyzyla/pdfium, pdfjs-dist, @bull-board's UI), worker-thread transports
 * (pino), and the big, rarely loaded ones (the AWS SDK, the emulator's tokenizer). Every chunk
 * is written directly in the output folder, one level below the project, as src/root.ts needs.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'rolldown';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({ options: { out: { type: 'string', default: 'dist' } } });
const out = resolve(ROOT, values.out);
if (dirname(out) !== ROOT) throw new Error(`--out must be a folder directly in ${ROOT} (src/root.ts finds the project one level up), got ${out}`);

const EXTERNAL = new Set([
  'sharp',
  '@napi-rs/canvas',
  'msgpackr-extract',
  '@hyzyla/pdfium',
  'pdfjs-dist',
  '@bull-board/api',
  '@bull-board/hono',
  '@bull-board/ui',
  'pino',
  'pino-pretty',
  'thread-stream',
  'gpt-tokenizer',
]);

/** The package a bare specifier names (`@scope/name/x` -> `@scope/name`), or undefined for a path. */
function packageOf(id: string): string | undefined {
  if (id.startsWith('.') || id.startsWith('/') || id.startsWith('node:') || id.startsWith('\0')) return undefined;
  const parts = id.split('/');
  return id.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** How long chunks of an earlier bundle are kept for processes still running it. */
const KEEP_OLD_CHUNKS_MS = 24 * 3600_000;

const started = performance.now();
// Before any source is read: the stamp bears this time (below).
// Two seconds before, not now: a file's mtime comes from the kernel's coarse clock (up to a tick
// behind Date.now(); a source saved 1 ms after this line was dated 0.3 ms before it in a CI run),
// and some filesystems keep whole seconds. Erring early only makes the sources run until the
// next bundle.
const readFrom = new Date(Date.now() - 2000);
// The stamp goes first: from here until it is written again, bin/docbatch runs the sources.
const stamp = join(out, '.built');
rmSync(stamp, { force: true });
mkdirSync(out, { recursive: true });
// The lock files as this build reads the packages: npm rewrites them (same content, new time) at
// every install, after the time the stamp bears, so bin/docbatch compares their content with these
// copies when they are newer than the stamp. A lock file absent now has no copy: one appearing
// later makes the sources run.
const locks = join(out, '.locks');
rmSync(locks, { recursive: true, force: true });
mkdirSync(locks);
for (const lock of ['package-lock.json', 'node_modules/.package-lock.json']) {
  if (existsSync(join(ROOT, lock))) copyFileSync(join(ROOT, lock), join(locks, lock.replaceAll('/', '-')));
}
const result = await build({
  input: { main: join(ROOT, 'src/cli/main.ts') },
  platform: 'node',
  external: (id) => {
    const pkg = packageOf(id);
    return pkg !== undefined && (EXTERNAL.has(pkg) || pkg.startsWith('@aws-sdk/'));
  },
  logLevel: 'warn',
  // ASCII output (other characters escaped, doc comments dropped): V8 keeps an ASCII source one
  // byte a character, and reads it faster; a few dashes and arrows in messages made the chunk
  // with BullMQ (1.7 MB) two bytes a character. `enqueue --help`: ~0.295 -> 0.285 s, 7% fewer
  // page faults (5 interleaved runs).
  output: {
    dir: out,
    format: 'esm',
    entryFileNames: '[name].js',
    chunkFileNames: '[name]-[hash].js',
    charset: 'ascii',
    comments: { legal: true, annotation: false, jsdoc: false },
  },
});
// The stamp bin/docbatch compares the sources with: written last, so a bundle cut short by a
// failure or a kill has none and is never run. Its time is when the build began, not ended: a
// source saved while the build ran (read before or after the change) is newer than the stamp,
// so the sources run until the next bundle.
writeFileSync(stamp, `${readFrom.toISOString()}\n`);
utimesSync(stamp, readFrom, readFrom);
// The previous bundle's chunks stay a day: a worker or dashboard started from it loads some
// chunks only when first needed (a verb's error path, the S3 store), long after it started, and
// must still find them after an `npm install` made this one.
const made = new Set(result.output.map((file) => file.fileName));
for (const name of readdirSync(out)) {
  if (made.has(name) || name === '.built' || !name.endsWith('.js')) continue;
  if (Date.now() - statSync(join(out, name)).mtimeMs > KEEP_OLD_CHUNKS_MS) rmSync(join(out, name), { force: true });
}
console.log(`docbatch: bundled the command line into ${values.out}/ (${made.size} files) in ${Math.round(performance.now() - started)} ms`);
