/**
 * Whose is a failed write met while storing (src/store/write-problem.ts), on errors the kernel
 * really gives: a full device's write (/dev/full: ENOSPC, no path) is the store's; a write whose
 * reader went away (EPIPE, no path either: what a Redis connection's write may get) is not; an
 * errno naming a path is the store's only inside its folder, and not when it is the process's
 * limit (EMFILE: no file descriptors left, whatever folder was being written).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { storeWriteProblem } from '../../src/store/write-problem.ts';

const dir = mkdtempSync(join(tmpdir(), 'docbatch-write-problem-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error('did not throw');
}

/**
 * The error of a write whose reader went away, as a connection's write gets it (EPIPE, syscall
 * `write`, no path): a FIFO's write end, its read end closed (Node ignores SIGPIPE).
 */
function brokenPipeError(): NodeJS.ErrnoException {
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(fifo, constants.O_WRONLY);
  closeSync(reader);
  try {
    return thrown(() => writeSync(writer, 'x')) as NodeJS.ErrnoException;
  } finally {
    closeSync(writer);
  }
}

it("a full device (no path) is the store's; a write whose reader went away (a connection's: Redis's) is not", () => {
  const full = thrown(() => writeFileSync('/dev/full', 'x')) as NodeJS.ErrnoException;
  expect([full.code, full.syscall, full.path]).toEqual(['ENOSPC', 'write', undefined]);
  expect(storeWriteProblem(full, dir, 'BLOB_DIR', dir)?.code).toBe('BLOB_STORE_UNWRITABLE');
  const pipe = brokenPipeError();
  expect([pipe.code, pipe.syscall, pipe.path]).toEqual(['EPIPE', 'write', undefined]);
  expect(storeWriteProblem(pipe, dir, 'BLOB_DIR', dir)).toBeNull();
});

it('an errno naming a path: the store\'s inside its folder only', () => {
  mkdirSync(join(dir, 'store'));
  const inside = thrown(() => writeFileSync(join(dir, 'store', 'missing', 'x'), 'x')); // ENOENT, path inside
  expect(storeWriteProblem(inside, join(dir, 'store'), 'BLOB_DIR', join(dir, 'store'))?.message).toMatch(/^cannot write into the blob store BLOB_DIR .*\/store: ENOENT: no such file or directory, open '.*\/store\/missing\/x': check /);
  const outside = thrown(() => writeFileSync(join(dir, 'elsewhere', 'x'), 'x'));
  expect(storeWriteProblem(outside, join(dir, 'store'), 'BLOB_DIR', join(dir, 'store'))).toBeNull();
  expect(storeWriteProblem(thrown(() => writeFileSync(join(dir, 'store-sibling', 'x'), 'x')), join(dir, 'store'), 'BLOB_DIR', join(dir, 'store'))).toBeNull(); // a prefix of the name is not inside
});

it("no file descriptors left (EMFILE) naming a path inside the folder: the process's limit, not the store's", () => {
  const store = join(dir, 'store-fds');
  mkdirSync(store);
  // A real EMFILE from opening files inside the store, in a child held to 32 descriptors.
  const script = `const fs = require('node:fs'); try { for (let i = 0; ; i++) fs.openSync(${JSON.stringify(store)} + '/f' + i, 'w'); } catch (e) { process.stdout.write(JSON.stringify({ message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path })); }`;
  const seen = JSON.parse(execFileSync('sh', ['-c', 'ulimit -n 32 && exec "$0" -e "$1"', process.execPath, script], { encoding: 'utf8' })) as { message: string; code: string; errno: number; syscall: string; path: string };
  expect([seen.code, seen.syscall, seen.path.startsWith(`${store}/`)]).toEqual(['EMFILE', 'open', true]);
  const err = Object.assign(new Error(seen.message), { code: seen.code, errno: seen.errno, syscall: seen.syscall, path: seen.path });
  // Was: BLOB_STORE_UNWRITABLE 'cannot write into the blob store ...: check ... or set BLOB_DIR to another folder'.
  expect(storeWriteProblem(err, store, 'BLOB_DIR', store)).toBeNull();
});
