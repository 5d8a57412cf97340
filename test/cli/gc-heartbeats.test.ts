/**
 * `docbatch gc` removes heartbeats silent for an hour: a worker's, and now a writer's too
 * (`{p}:writers`); a crashed writer's stayed for ever, and `status` called it silent for ever.
 * Fresh ones stay. The real CLI on real Redis.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { connectRedis } from '../../queues/connect.ts';
import { runCli } from '../helpers/cli.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';

const prefix = uniquePrefix(import.meta.filename);
const redis = connectRedis(TEST_REDIS_URL, 'client');
const dir = mkdtempSync(join(tmpdir(), 'docbatch-gc-beats-'));

afterAll(async () => {
  redis.disconnect();
  await deletePrefix(prefix);
  rmSync(dir, { recursive: true, force: true });
});

it('removes worker and writer heartbeats silent for an hour, keeps fresh ones', async () => {
  const old = Date.now() - 2 * 3_600_000;
  await redis.hset(`${prefix}:workers`, 'gpu-old', JSON.stringify({ at: old }), 'gpu-new', JSON.stringify({ at: Date.now() }));
  await redis.hset(`${prefix}:writers`, 'writer-old', JSON.stringify({ at: old }), 'writer-new', JSON.stringify({ at: Date.now() }));
  const r = await runCli(['gc', '--json'], { REDIS_URL: TEST_REDIS_URL, DOCBATCH_PREFIX: prefix, BLOB_DIR: join(dir, 'blobs'), OUT_DIR: join(dir, 'out') }, { timeoutMs: 30_000 });
  expect(r.code, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toMatchObject({ heartbeats: 2 });
  expect(await redis.hkeys(`${prefix}:workers`)).toEqual(['gpu-new']);
  expect(await redis.hkeys(`${prefix}:writers`)).toEqual(['writer-new']);
}, 60_000);
