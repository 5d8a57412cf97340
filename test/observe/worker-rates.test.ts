/**
 * The dashboard's per-worker throughput (WorkerRates) from heartbeats in a real Redis: the rate
 * is the growth of a worker's settled count between heartbeats, and a worker that went silent
 * (killed with kill -9: its heartbeat stays until gc) settles nothing now, whatever it did before.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../queues/connect.ts';
import { listPage } from '../../src/observe/documents-page.ts';
import { WorkerRates } from '../../src/observe/worker-rates.ts';
import { SILENT_MS } from '../../src/observe/workers.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';

const prefix = uniquePrefix(import.meta.filename);
const redis = connectRedis(TEST_REDIS_URL, 'client');

afterAll(async () => {
  redis.disconnect();
  await deletePrefix(prefix);
});

const T0 = Date.parse('2026-03-02T12:00:00Z');
const beat = (at: number, pages: number) =>
  redis.hset(`${prefix}:workers`, 'gpu0', JSON.stringify({ at, engine: 'http://127.0.0.1:8000', model: 'm', window: 8, inFlight: 8, active: 9, queues: ['infer'], startedAt: T0, settled: { pages } }));

describe('a worker killed while it ran', () => {
  it('has a rate while its heartbeats come, and 0 once it is silent', async () => {
    const rates = new WorkerRates(redis, prefix);
    await beat(T0 + 5000, 10);
    await rates.sample(T0 + 5000);
    await beat(T0 + 10_000, 20);
    const live = (await rates.rates(T0 + 10_000))[0]!;
    expect(live.now).toBeCloseTo(2, 5);
    expect(live.beat.silent).toBe(false);

    // No heartbeat after T0 + 10 s: kill -9.
    const dead = (await rates.rates(T0 + 10_000 + SILENT_MS + 5000))[0]!;
    expect(dead.beat.silent).toBe(true);
    expect(dead.now).toBe(0);
    // The Workers table says so: no pages per second, nothing in flight from its last heartbeat.
    const list = { documents: [], total: 0, page: 1, per_page: 50, pages: 1, states: { queued: 0, running: 0, written: 0, failed: 0 }, scanned: 0, truncated: false };
    const row = /<tr class="trouble">.*?<\/tr>/s.exec(listPage({ prefix, readOnly: false }, list, { q: '', state: undefined }, [dead]))![0];
    expect(row).toContain('0.00 pages/s');
    expect(row).not.toContain('>8<');
  });
});
