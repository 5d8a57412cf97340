/**
 * The writer process's log lines name its role once: `docbatch writer` bound `role` in its
 * logger and the writer bound it again, so every line held `"role":"writer"` twice (a JSON
 * object with a duplicate key: log shippers keep one, or refuse the line).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';

const prefix = uniquePrefix(import.meta.filename);
const dir = mkdtempSync(join(tmpdir(), 'docbatch-writer-log-'));
afterAll(async () => {
  await deletePrefix(prefix);
  rmSync(dir, { recursive: true, force: true });
});

it('writes each log field once', async () => {
  const child = spawn(BIN, ['writer'], {
    env: { ...process.env, REDIS_URL: TEST_REDIS_URL, DOCBATCH_PREFIX: prefix, OUT_DIR: join(dir, 'out'), BLOB_DIR: join(dir, 'blobs'), LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const started = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 20_000);
    child.stderr.on('data', () => {
      if (out.includes('writer started')) {
        clearTimeout(timer);
        resolve(true);
      }
    });
  });
  // 'writer started' is said just before the process takes signals: a SIGTERM at once could end it untold.
  await new Promise((r) => setTimeout(r, 1000));
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  expect(started).toBe(true);
  const lines = out.split('\n').filter((l) => l.startsWith('{'));
  expect(lines.length).toBeGreaterThanOrEqual(2);
  for (const line of lines) expect(line.match(/"role":/g)).toHaveLength(1);
}, 30_000);
