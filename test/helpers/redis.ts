import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { Redis } from 'ioredis';

/** The Redis every test talks to (a real one; .ci/run starts it if none answers). */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix unique to one test file and run, e.g. `dbt-enqueue-3f9a1c`. */
export function uniquePrefix(file: string): string {
  const name = basename(file).replace(/\.test\.ts$/, '').replace(/[^a-z0-9]+/gi, '-');
  return `dbt-${name}-${randomBytes(3).toString('hex')}`;
}

/** Deletes every key under `prefix:`; call in afterAll. */
export async function deletePrefix(prefix: string, url = TEST_REDIS_URL): Promise<number> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  await redis.connect();
  let cursor = '0';
  let deleted = 0;
  try {
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}
