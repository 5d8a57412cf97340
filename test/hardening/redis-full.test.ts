/**
 * Redis at its maxmemory with policy noeviction (BullMQ's advice) refuses writes with "OOM
 * command not allowed". Before: `docbatch enqueue` printed "unexpected error: ReplyError ..."
 * with a stack and exited 1; a worker started on it died of an unhandled rejection (its first
 * top-up of the wait lists), and one that survived spun BullMQ's fetch loop (over 100,000 "queue
 * error" lines in 14 s) while its /health said ok. Now: REDIS_FULL in one line (exit 2); the
 * worker says it once, stops taking units, and takes work again once Redis accepts writes.
 * A private redis-server is made full; the Redis other tests share is not touched.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { startPrivateRedis, type PrivateRedis } from '../../src/demo/private-redis.ts';
import { createLogger } from '../../src/observe/log.ts';
import { runCli } from '../helpers/cli.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let redis: PrivateRedis | undefined;
let admin: Redis | undefined;
let p: Pipeline | undefined;
let dir: string | undefined;
afterEach(async () => {
  await p?.stop();
  admin?.disconnect();
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  p = undefined;
  admin = undefined;
  redis = undefined;
  dir = undefined;
});

async function fullRedis(): Promise<void> {
  redis = await startPrivateRedis();
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  await admin.config('SET', 'maxmemory-policy', 'noeviction');
}
const fill = () => admin!.config('SET', 'maxmemory', '1');
const free = () => admin!.config('SET', 'maxmemory', '0');

it('enqueue into a full Redis says REDIS_FULL in one line and exits 2', async () => {
  await fullRedis();
  dir = await mkdtemp(join(tmpdir(), 'docbatch-full-'));
  const pdf = join(dir, 'a.pdf');
  writeFileSync(pdf, numberedPdf(2));
  await fill();
  const r = await runCli(['enqueue', pdf], { REDIS_URL: redis!.url, DOCBATCH_PREFIX: 'dbt-redis-full', BLOB_DIR: join(dir, 'blobs'), OUT_DIR: join(dir, 'out') }, { timeoutMs: 60_000 });
  expect(r.stderr).toMatch(/^docbatch: REDIS_FULL: Redis is full: it refuses writes at its maxmemory \(policy noeviction\)\. Raise maxmemory/);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.code).toBe(2);
}, 90_000);

it('a worker on a full Redis says so once, takes nothing, and works again once Redis has room', async () => {
  await fullRedis();
  const lines: Array<{ msg: string; code?: string; role?: string }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as { msg: string; code?: string; role?: string });
      done();
    },
  });
  p = await startPipeline({ file: import.meta.filename, worker: false, config: { redisUrl: redis!.url }, log: createLogger({ level: 'info', destination: sink }) });
  await fill();
  const worker = await p.startWorker();
  await new Promise((r) => setTimeout(r, 3000));
  expect(lines.filter((l) => /queue error/.test(l.msg)).length).toBeLessThanOrEqual(2);
  // Once by the worker; the writer (started on it too, before it filled up) says it once at most:
  // idle, it writes nothing until BullMQ's next stalled check or a document to write.
  const full = lines.filter((l) => l.code === 'REDIS_FULL');
  expect(full.filter((l) => l.role !== 'writer')).toHaveLength(1);
  expect(full.filter((l) => l.role === 'writer').length).toBeLessThanOrEqual(1);
  expect(worker.pauseReasons).toContain('redis');

  await free();
  for (let i = 0; i < 100 && worker.pauseReasons.length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  expect(worker.pauseReasons).toEqual([]);
  const pdf = join(p.dir, 'after.pdf');
  writeFileSync(pdf, numberedPdf(3));
  const [done] = await p.wait(acceptedIds(await p.enqueue([pdf])), 60_000);
  expect(done!.record).toMatchObject({ state: 'written', done: 3, failed: 0 });
}, 90_000);
