/**
 * `docbatch enqueue --task summarise` (a mistyped built-in) is to say: did you mean "summarize"?
 * resolveTask handed loadTaskFile the path made absolute, which is never a bare word, so the CLI
 * only ever said "cannot read the task file (no such file)". The real CLI; it stops at the task,
 * before Redis is asked anything.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';

const prefix = uniquePrefix(import.meta.filename);
const dir = mkdtempSync(join(tmpdir(), 'docbatch-task-typo-'));
afterAll(async () => {
  await deletePrefix(prefix);
  rmSync(dir, { recursive: true, force: true });
});

it('enqueue --task summarise says did you mean "summarize"', async () => {
  const pdf = join(import.meta.dirname, '..', '..', 'samples', 'sample-report.pdf');
  const r = await runCli(['enqueue', '--task', 'summarise', pdf], { REDIS_URL: TEST_REDIS_URL, DOCBATCH_PREFIX: prefix, BLOB_DIR: join(dir, 'blobs'), OUT_DIR: join(dir, 'out') }, { cwd: dir, timeoutMs: 30_000 });
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/did you mean "summarize"\?/);
}, 40_000);
