/**
 * `npx docbatch worker &` then `kill %1` (the README's walkthroughs): the SIGTERM reaches npm,
 * which ends its `sh -c` but not docbatch's node. docbatch started so stops (draining) once npm's
 * shell is gone. Real processes through the real npx.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { until } from '../helpers/until.ts';

const root = join(import.meta.dirname, '..', '..');
const prefix = uniquePrefix(import.meta.filename);
const dir = mkdtempSync(join(tmpdir(), 'docbatch-npx-stop-'));
const started: ChildProcess[] = [];
afterAll(async () => {
  for (const c of started) c.kill('SIGKILL');
  await deletePrefix(prefix);
  rmSync(dir, { recursive: true, force: true });
});

function npx(args: string[], env: Record<string, string> = {}): { child: ChildProcess; out: () => string } {
  const child = spawn('npx', ['--no-install', 'docbatch', ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  return { child, out: () => out };
}

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

it('the engine emulator stops when the npm that started it is sent SIGTERM', async () => {
  const { child, out } = npx(['engine', '--port', '0']);
  await until('the engine URL', () => /http:\/\/127\.0\.0\.1:\d+/.test(out()), 30_000);
  const port = Number(/http:\/\/127\.0\.0\.1:(\d+)/.exec(out())![1]);
  expect(await listening(port)).toBe(true);
  child.kill('SIGTERM'); // npm
  await until('the engine to stop listening', async () => !(await listening(port)), 10_000);
  expect(out()).toMatch(/npm, which started it, is gone/);
}, 60_000);

it('the writer drains and stops when the npm that started it is sent SIGTERM', async () => {
  const { child, out } = npx(['writer'], { REDIS_URL: TEST_REDIS_URL, DOCBATCH_PREFIX: prefix, OUT_DIR: join(dir, 'out'), BLOB_DIR: join(dir, 'blobs'), LOG_FORMAT: 'json' });
  await until('the writer to start', () => out().includes('writer started'), 30_000);
  await new Promise((r) => setTimeout(r, 1000)); // it takes signals just after saying so
  child.kill('SIGTERM'); // npm
  await until('the writer to stop', () => out().includes('writer stopped'), 10_000);
  expect(out()).toMatch(/npm, which started this process, is gone/);
}, 60_000);
