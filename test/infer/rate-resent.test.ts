/**
 * A rate limiter's ask whose reply was lost: the worker's connection to Redis drops after the
 * ACQUIRE script recorded the units' sends, before its reply came back, and ioredis sends the
 * same call again once reconnected (autoResendUnfulfilledCommands). The second run must find
 * those sends its own (same nonces) and let the units through, not count them a second time
 * against ENGINE_RPM / ENGINE_TPM: was, a unit's own entry (scored "now + the request timeout")
 * made it wait for itself until the entry left the window, 11 minutes with the defaults, while
 * holding that capacity from every other worker.
 *
 * Real Redis behind the TCP proxy of test/helpers/redis-proxy.ts.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { EngineRateLimiter } from '../../src/infer/rate-limit.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { startRedisProxy } from '../helpers/redis-proxy.ts';

const prefix = uniquePrefix(import.meta.filename);
const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
afterAll(async () => {
  redis.disconnect();
  await deletePrefix(prefix);
});

const logKey = (p: string, engine: string) => `${p}:rate:${createHash('sha256').update(engine).digest('hex').slice(0, 16)}`;

it.each([
  ['ENGINE_TPM', { tpm: 1000 }, [600]],
  ['ENGINE_RPM', { rpm: 1 }, [10]],
] as const)('an ask run twice (its reply lost) lets its units through once, under %s', async (_name, limits, tokens) => {
  const proxy = await startRedisProxy();
  const viaProxy = new Redis(proxy.url, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
  viaProxy.on('error', () => {});
  const engine = `http://resent-${_name}`;
  try {
    const limiter = new EngineRateLimiter(viaProxy, prefix, engine, { ...limits, windowMs: 60_000, requestTimeoutMs: 600_000 });
    const key = logKey(prefix, engine);
    // The ACQUIRE call: the only one carrying the hold key.
    proxy.dropReplyOf((chunk) => chunk.includes(`${key}:hold`));
    const started = Date.now();
    const passes = await Promise.all(tokens.map((t) => limiter.acquire(t, AbortSignal.timeout(8000))));
    expect(proxy.dropped).toBe(1);
    expect(Date.now() - started, 'let through at once').toBeLessThan(3000);
    expect(limiter.waiting).toBe(0);
    for (const pass of passes) await pass.finish();
    const entries = await redis.zrange(key, '0', '-1');
    expect(entries.map((m) => Number(m.slice(m.lastIndexOf(':') + 1))).sort(), `log ${entries.join(', ')}`).toEqual([...tokens].sort());
  } finally {
    viaProxy.disconnect();
    await proxy.close();
  }
}, 30_000);
