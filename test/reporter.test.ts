/**
 * Issue 8, item 13: a file whose setup fails counts as failed in the closing line (it read
 * "376 passed, 0 failed, 19 skipped" for a run that exited 1).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';

it('a file that failed to run is counted as a failure in the closing line', () => {
  const root = join(import.meta.dirname, '..');
  const run = spawnSync(join(root, 'node_modules/.bin/vitest'), ['run', '--config', 'test/fixtures/reporter/vitest.config.ts'], { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } });
  expect(run.status).toBe(1);
  expect(run.stdout).toMatch(/^1 passed, 1 failed, 2 skipped$/m);
}, 60_000);
