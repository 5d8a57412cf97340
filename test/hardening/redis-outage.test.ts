/**
 * Issue 14: a worker and a writer whose Redis goes away say so once (REDIS_UNREACHABLE, with what
 * to do) and once more when it is back, not one line per reconnect attempt of every connection
 * (216 lines in 15 s before), and carry on with the work afterwards. Redis goes away behind a
 * TCP forwarder (test/helpers/redis-proxy.ts); the Redis other tests share is not touched.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { createLogger } from '../../src/observe/log.ts';
import { createWriter, type DocumentWriter } from '../../src/write/writer.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { startRedisProxy, type RedisProxy } from '../helpers/redis-proxy.ts';

let p: Pipeline | undefined;
let proxy: RedisProxy | undefined;
let writer: DocumentWriter | undefined;
afterEach(async () => {
  await writer?.close();
  await p?.stop();
  await proxy?.close();
  p = undefined;
  proxy = undefined;
  writer = undefined;
});

interface Line {
  msg: string;
  role?: string;
  worker?: string;
  code?: string;
  err?: string;
}

it('a worker and a writer say once that Redis is away and once that it is back, then finish the work', async () => {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  const log = createLogger({ level: 'info', destination: sink });
  proxy = await startRedisProxy();
  p = await startPipeline({ file: import.meta.filename, worker: false, log });
  const worker = await p.startWorker({ redisUrl: proxy.url, workerName: 'behind-proxy' });
  writer = createWriter({ ...p.config, redisUrl: proxy.url, workerName: 'writer-behind-proxy' }, log);
  await writer.start();

  const first = join(p.dir, 'before.pdf');
  writeFileSync(first, numberedPdf(3));
  await p.wait(acceptedIds(await p.enqueue([first])));

  const mark = lines.length;
  await proxy.down();
  // Long enough for every connection to try again several times (they retry every 2 s at most).
  await new Promise((r) => setTimeout(r, 9000));
  const during = lines.slice(mark);
  await proxy.up();
  const back = async () => lines.filter((l) => l.msg === 'Redis answers again').length;
  for (let i = 0; i < 300 && (await back()) < 1; i++) await new Promise((r) => setTimeout(r, 100));

  const mine = lines.slice(mark).filter((l) => l.worker === 'behind-proxy');
  expect(mine.filter((l) => l.code === 'REDIS_UNREACHABLE')).toHaveLength(1);
  expect(mine.find((l) => l.code === 'REDIS_UNREACHABLE')!.err).toMatch(/nothing listens at 127\.0\.0\.1:\d+ \(connection refused\)|closed the connection/);
  expect(mine.filter((l) => l.msg === 'Redis answers again')).toHaveLength(1);
  expect(mine.filter((l) => /queue error/.test(l.msg))).toEqual([]);
  // The writer (its BullMQ worker): one line for the outage, not one per reconnect attempt.
  const writerLines = during.filter((l) => l.role === 'writer');
  expect(writerLines.filter((l) => /queue error/.test(l.msg)).length).toBeLessThanOrEqual(1);
  expect(writerLines.length).toBeLessThanOrEqual(3);
  expect(during.length).toBeLessThanOrEqual(5);

  // And the work goes on through the same processes.
  const second = join(p.dir, 'after.pdf');
  writeFileSync(second, numberedPdf(3, 4));
  const [done] = await p.wait(acceptedIds(await p.enqueue([second])), 60_000);
  expect(done!.record).toMatchObject({ state: 'written', done: 3, failed: 0 });
  expect(worker.unhealthy).toBeNull();
}, 120_000);
