/**
 * The test pipeline (test/helpers/pipeline.ts) leaves Redis as it found it, also when it fails
 * half-way: a worker that refuses to start (WORKER_UNFIT) is closed, and a pipeline whose start
 * fails closes what it opened and deletes its keys. It did not: the failed worker's queues and
 * connections stayed open, and a pipeline whose own worker refused to start (the caller never
 * gets a `stop()`) left `{prefix}:write:meta` and more behind for good.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { startPipeline } from './helpers/pipeline.ts';
import { TEST_REDIS_URL } from './helpers/redis.ts';

const redis = new Redis(TEST_REDIS_URL);
afterAll(() => redis.disconnect());

const keysOf = async (pattern: string) => {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  return keys.sort();
};

it('a pipeline whose worker refuses to start leaves no key behind', async () => {
  const tag = `pipeline-cleanup-${randomBytes(3).toString('hex')}`;
  const err = await startPipeline({ file: `/nowhere/${tag}.test.ts`, emulator: { model: 'text/only', acceptsImages: false } }).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'WORKER_UNFIT' });
  await new Promise((r) => setTimeout(r, 500));
  expect(await keysOf(`dbt-${tag}-*`)).toEqual([]);
});

it('a worker that refuses to start is closed, and stop() leaves no key behind', async () => {
  const tag = `pipeline-refused-${randomBytes(3).toString('hex')}`;
  const p = await startPipeline({ file: `/nowhere/${tag}.test.ts`, worker: false });
  const err = await p.startWorker({ model: 'someone/else' }).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'WORKER_UNFIT' });
  await p.stop();
  await new Promise((r) => setTimeout(r, 500));
  expect(await keysOf(`dbt-${tag}-*`)).toEqual([]);
});
