/**
 * `--wait` (waitForDocs) ends as the last document is written or fails, not up to a poll later:
 * the store announces finished documents on a channel the wait listens to. Where Redis refuses
 * the channel (an ACL user without channels), the wait still ends, by polling. Real Redis.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { finishedWakeup } from '../../src/observe/finished-wakeup.ts';
import { waitForDocs } from '../../src/observe/progress.ts';
import { DocStore } from '../../src/store/docs.ts';
import type { UnitResult } from '../../src/store/types.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { startRedisProxy } from '../helpers/redis-proxy.ts';
import { until } from '../helpers/until.ts';

let p: Pipeline | undefined;
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await p?.stop();
  p = undefined;
});

const answered: UnitResult = { ok: true, text: 'x', promptTokens: 1, completionTokens: 1, engineMs: 5, latencyMs: 5, model: 'm', finishReason: 'stop' };

async function oneDocument(): Promise<{ store: DocStore; docId: string }> {
  p = await startPipeline({ file: import.meta.filename, worker: false });
  const pdf = join(p.dir, 'one.pdf');
  writeFileSync(pdf, numberedPdf(1));
  const [docId] = acceptedIds(await p.enqueue([pdf]));
  return { store: p.store, docId: docId! };
}

it('a wait polling every 30 s ends within seconds of the document being written (by the writer), and at once when one fails', async () => {
  const { store, docId } = await oneDocument();
  const started = Date.now();
  let ended = 0;
  const waiting = waitForDocs(store, [docId], { intervalMs: 30_000 }).then((r) => {
    ended = Date.now();
    return r;
  });
  await new Promise((r) => setTimeout(r, 500)); // the wait has polled once and sleeps
  // Its only unit answered: the pipeline's writer writes it.
  const answeredAt = Date.now();
  expect((await store.settle(docId, 1, 0, answered)).outcome).toBe('recorded');
  const [progress] = await waiting;
  expect(progress!.record.state).toBe('written');
  expect(ended - answeredAt).toBeLessThan(5000);
  expect(ended - started).toBeLessThan(10_000);

  // Failed: the same.
  const [again] = await p!.enqueue([join(p!.dir, 'one.pdf')], { force: true });
  const failing = waitForDocs(store, [docId], { intervalMs: 30_000 });
  await new Promise((r) => setTimeout(r, 500));
  const failedAt = Date.now();
  expect(await store.markWriteFailed(docId, again!.runs![0]!.gen, { code: 'WRITE_FAILED', message: 'disk full' })).toBe(true);
  const [failed] = await failing;
  expect(failed!.record.state).toBe('failed');
  expect(Date.now() - failedAt).toBeLessThan(1000);
}, 60_000);

it('an ACL user without channels: the wait ends by polling, nothing fails', async () => {
  const { docId } = await oneDocument();
  const admin = new Redis(TEST_REDIS_URL);
  const user = `docbatch-wait-test-${process.pid}`;
  cleanups.push(async () => {
    await admin.call('ACL', 'DELUSER', user);
    admin.disconnect();
  });
  await admin.call('ACL', 'SETUSER', user, 'reset', 'on', 'nopass', `~${p!.store.prefix}*`, 'resetchannels', '+@all');
  const url = new URL(TEST_REDIS_URL);
  url.username = user;
  const limited = new Redis(url.toString(), { maxRetriesPerRequest: 1 });
  cleanups.push(async () => limited.disconnect());
  const store = new DocStore(limited, p!.store.prefix);
  await expect(limited.subscribe(store.finishedChannel)).rejects.toThrow(/NOPERM/);
  const waiting = waitForDocs(store, [docId], { intervalMs: 200 });
  await new Promise((r) => setTimeout(r, 300));
  expect((await store.settle(docId, 1, 0, answered)).outcome).toBe('recorded');
  const [progress] = await waiting;
  expect(progress!.record.state).toBe('written');
}, 60_000);

it('a wait closed while its channel is being subscribed again after Redis came back leaves no unhandled rejection (enqueue --wait exited 1)', async () => {
  // ioredis subscribes a reconnected subscriber to its channels again by itself and never
  // handles that command's promise: closed before the reply came, it was rejected ("Connection
  // is closed."), unhandled, and `enqueue --wait` died with exit 1 after printing that every
  // document was written (a fresh-clone test run, Redis away for 3 s at the end of a wait).
  const proxy = await startRedisProxy();
  const prefix = uniquePrefix(`${import.meta.filename}-resubscribe`);
  const redis = new Redis(proxy.url, { maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  cleanups.push(async () => {
    redis.disconnect();
    await proxy.close();
    await deletePrefix(prefix);
  });
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  cleanups.push(async () => void process.off('unhandledRejection', onUnhandled));
  const wakeup = await finishedWakeup(new DocStore(redis, prefix), ['d0']);
  let closedInHold = false;
  // The subscribe sent on reconnecting: the wait ends (its poll saw every document finished)
  // before Redis answers it.
  proxy.holdReplyOf(
    (chunk) => /subscribe/i.test(chunk.toString('latin1')),
    async () => {
      wakeup.close();
      closedInHold = true;
      await new Promise((r) => setTimeout(r, 100));
    },
  );
  await proxy.down();
  await new Promise((r) => setTimeout(r, 300));
  await proxy.up();
  await until('the subscribe after the reconnect, held', () => closedInHold, 10_000, 20);
  await new Promise((r) => setTimeout(r, 500));
  expect(unhandled).toEqual([]);
});
