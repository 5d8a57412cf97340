/**
 * Redis refuses the rate limiter's script for a while (ENGINE_RPM/ENGINE_TPM): here a failover
 * that left the worker's Redis a replica ("READONLY You can't write against a read only
 * replica"), as LOADING after a restart or MISCONF would. Before: every unit in the limiter's
 * line was rejected with that raw error, and the worker's dispatch took it for the engine's
 * (ENGINE_ERROR: an attempt used, the endpoint blamed). Now the line waits for Redis, as a held
 * answer waits for a full Redis (src/infer/hold.ts), and lets the units through once it takes
 * writes again; a unit leaves it only by its signal (ABORTED, no attempt used). A refusal that
 * lasts (NOPERM, a script error) fails the line with INTERNAL, never ENGINE_ERROR.
 * Private redis-servers; the Redis other tests share is not touched.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, expect, it } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from '../../src/demo/private-redis.ts';
import { EngineRateLimiter } from '../../src/infer/rate-limit.ts';

const servers: PrivateRedis[] = [];
const clients: Redis[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  for (const s of servers.splice(0)) await s.stop();
});

async function redis(): Promise<{ server: PrivateRedis; client: Redis; port: number }> {
  const server = await startPrivateRedis();
  servers.push(server);
  const client = new Redis(server.url, { maxRetriesPerRequest: null });
  clients.push(client);
  return { server, client, port: Number(new URL(server.url).port) };
}

/** The limiter's Redis made a replica of another (a failover): its writes are refused READONLY. */
async function demoted(): Promise<{ client: Redis; limiter: EngineRateLimiter }> {
  const primary = await redis();
  const own = await redis();
  const limiter = new EngineRateLimiter(own.client, 'rfr', 'http://failover.example', { rpm: 100, windowMs: 60_000, requestTimeoutMs: 1000 });
  // A first pass while Redis takes writes (the script is loaded, the log exists).
  await (await limiter.acquire(10, AbortSignal.timeout(5000))).finish();
  await own.client.replicaof('127.0.0.1', primary.port);
  await expect(own.client.set('probe', '1')).rejects.toThrow(/READONLY/);
  return { client: own.client, limiter };
}

it('units in the line wait while Redis refuses writes for a while (READONLY after a failover), and go through once it takes them again', async () => {
  const { client, limiter } = await demoted();
  const outcomes: string[] = [];
  const waiting = Array.from({ length: 3 }, () =>
    limiter.acquire(10, AbortSignal.timeout(20_000)).then(
      async (pass) => {
        outcomes.push('through');
        await pass.finish();
      },
      (err: unknown) => void outcomes.push(`rejected: ${(err as Error).message}`),
    ),
  );
  await new Promise((r) => setTimeout(r, 2500));
  expect(outcomes, 'nothing let through or rejected while Redis refuses writes').toEqual([]);
  expect(limiter.waiting).toBe(3);
  await client.replicaof('NO', 'ONE');
  await Promise.all(waiting);
  expect(outcomes).toEqual(['through', 'through', 'through']);
}, 30_000);

it('a unit that stops waiting meanwhile leaves the line (ABORTED), the others stay', async () => {
  const { client, limiter } = await demoted();
  const gone = new AbortController();
  const abandoned = limiter.acquire(10, gone.signal);
  const kept = limiter.acquire(10, AbortSignal.timeout(20_000));
  await new Promise((r) => setTimeout(r, 1500));
  gone.abort(new Error('lock lost'));
  await expect(abandoned).rejects.toMatchObject({ code: 'ABORTED' });
  await client.replicaof('NO', 'ONE');
  await (await kept).finish();
  expect(limiter.waiting).toBe(0);
}, 30_000);

it('a refusal that lasts (the log key of another type) fails the line with INTERNAL, not as the engine', async () => {
  const { client } = await redis();
  const limiter = new EngineRateLimiter(client, 'rfr', 'http://wrongtype.example', { rpm: 100, windowMs: 60_000, requestTimeoutMs: 1000 });
  const key = `rfr:rate:${createHash('sha256').update('http://wrongtype.example').digest('hex').slice(0, 16)}`;
  await client.set(key, 'not a sorted set');
  await expect(limiter.acquire(10, AbortSignal.timeout(5000))).rejects.toMatchObject({ code: 'INTERNAL', message: expect.stringMatching(/rate limiter .* could not ask Redis: WRONGTYPE/) });
}, 30_000);
