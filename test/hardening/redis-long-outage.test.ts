/**
 * Redis away for longer than the units' locks (LOCK_DURATION_MS), with units in flight. When it
 * answers again every lock has expired: BullMQ reports each unit twice ("could not renew lock",
 * then "Missing lock for job ... moveToDelayed"), and the units go back to the queue at the next
 * stalled check. Before, the worker logged each report as its own "queue error (retrying)"
 * line: 238 lines for 119 units in flight after a 90 s outage, burying the one line that said
 * Redis was away. Now one warning says how many units lost their locks and what happens to them;
 * every unit is still written once. Redis goes away behind a TCP forwarder
 * (test/helpers/redis-proxy.ts); the Redis other tests share is not touched.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { createLogger } from '../../src/observe/log.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { startRedisProxy, type RedisProxy } from '../helpers/redis-proxy.ts';

let p: Pipeline | undefined;
let proxy: RedisProxy | undefined;
afterEach(async () => {
  await p?.stop();
  await proxy?.close();
  p = undefined;
  proxy = undefined;
});

interface Line {
  msg: string;
  worker?: string;
  code?: string;
  units?: number;
}

it('units whose locks expired while Redis was away are said in one warning, not two lines each, and are all written once', async () => {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  proxy = await startRedisProxy();
  p = await startPipeline({
    file: import.meta.filename,
    worker: false,
    emulator: { speed: 1, outputTokensMin: 200, outputTokensMax: 300 },
    config: { lockDurationMs: 2000, stalledIntervalMs: 1000 },
    log: createLogger({ level: 'info', destination: sink }),
  });
  const worker = await p.startWorker({ redisUrl: proxy.url, workerName: 'long-outage' });
  const pdf = join(p.dir, 'long.pdf');
  writeFileSync(pdf, numberedPdf(12));
  const ids = acceptedIds(await p.enqueue([pdf]));
  for (let i = 0; i < 200 && worker.activeUnits < 4; i++) await new Promise((r) => setTimeout(r, 50));
  expect(worker.activeUnits).toBeGreaterThanOrEqual(4);
  await proxy.down();
  // Longer than the locks (2 s): every lock of a unit in flight expires.
  await new Promise((r) => setTimeout(r, 5000));
  await proxy.up();
  await p.wait(ids, 90_000);

  const mine = lines.filter((l) => l.worker === 'long-outage');
  const lockLines = mine.filter((l) => /lock/i.test(l.msg) || /Missing lock|could not renew lock/.test(JSON.stringify(l)));
  expect(mine.filter((l) => /queue error/.test(l.msg) && /lock/.test(JSON.stringify(l)))).toEqual([]);
  expect(lockLines.length).toBeGreaterThanOrEqual(1);
  expect(lockLines.length).toBeLessThanOrEqual(3);
  const pages = parsePages(readFileSync(join(p.config.outDir, 'long.md'), 'utf8'));
  expect([...pages.keys()]).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  expect([...pages.values()].filter((v) => v.failed)).toEqual([]);
}, 120_000);

it('answers that came back while Redis was away are recorded once it answers (their locks gone), not asked again', async () => {
  proxy = await startRedisProxy();
  p = await startPipeline({
    file: import.meta.filename,
    worker: false,
    emulator: { speed: 1, outputTokensMin: 100, outputTokensMax: 300 },
    config: { lockDurationMs: 2000, stalledIntervalMs: 1000 },
  });
  await p.startWorker({ redisUrl: proxy.url, workerName: 'long-outage-answers' });
  // The worker's start-up probe of the engine is a request too.
  const before = p.engine.stats();
  const pdf = join(p.dir, 'answers.pdf');
  writeFileSync(pdf, numberedPdf(12));
  const ids = acceptedIds(await p.enqueue([pdf]));
  // Away once at least 4 requests are at the engine.
  for (let i = 0; i < 400 && p.engine.stats().running < 4; i++) await new Promise((r) => setTimeout(r, 25));
  expect(p.engine.stats().running).toBeGreaterThanOrEqual(4);
  await proxy.down();
  const downAt = Date.now();
  const answeredBefore = p.engine.stats().completed;
  // Away longer than the locks (2 s), and until at least 3 answers came back meanwhile.
  for (let i = 0; i < 400 && (p.engine.stats().completed - answeredBefore < 3 || Date.now() - downAt < 3000); i++) await new Promise((r) => setTimeout(r, 50));
  const answeredWhileAway = p.engine.stats().completed - answeredBefore;
  await proxy.up();
  await p.wait(ids, 90_000);

  expect(answeredWhileAway).toBeGreaterThanOrEqual(3);
  const pages = parsePages(readFileSync(join(p.config.outDir, 'answers.md'), 'utf8'));
  expect([...pages.keys()]).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  expect([...pages.values()].filter((v) => v.failed)).toEqual([]);
  // Every answer the engine gave was used: only requests cut off with their lock are sent again.
  const after = p.engine.stats();
  expect(after.completed - before.completed).toBe(12);
  expect(after.requests - before.requests).toBe(12 + after.aborted - before.aborted);
}, 120_000);
