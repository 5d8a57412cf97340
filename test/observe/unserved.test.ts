/**
 * unservedWork: which waiting work no running worker takes, from real heartbeats' shape (the
 * queues a worker lists, src/infer/worker.ts queueNames). The CLI end of it, with a real worker,
 * is test/cli/unserved.test.ts. unservedWatch (what `--wait` says) against a real Redis.
 */
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { inferQueueFor, SHARED_INFER_QUEUE } from '../../queues/routes.ts';
import { progressOf } from '../../src/observe/progress.ts';
import { unservedWatch, unservedWork, type WorkerBeat } from '../../src/observe/workers.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import type { DocMeta, DocRecord } from '../../src/store/types.ts';

const prefix = uniquePrefix(import.meta.filename);
afterAll(async () => {
  await deletePrefix(prefix);
});

function doc(i: number, model: string | null, state: DocRecord['state'] = 'running'): ReturnType<typeof progressOf> {
  const docId = `d${i}`;
  const meta = { docId, kind: 'pdf', source: `in/${i}.pdf`, sha256: 'x', name: `${i}`, outSub: '', units: 3, feedUnits: 3, blob: 'b', task: {} as DocMeta['task'], model, queue: inferQueueFor(model), priority: 0, enqueuedAt: new Date().toISOString() } as DocMeta;
  return progressOf({ docId, meta, gen: 1, units: 3, state, done: state === 'written' ? 3 : 0, failed: 0, promptTokens: 0, completionTokens: 0, unitsWithoutUsage: 0, engineMs: 0, createdAt: meta.enqueuedAt, startedAt: null, finishedAt: null, resumedAt: null, resumedFrom: 0, writtenAt: null, files: [], writeError: null, fed: 0, reopens: 0 } as DocRecord);
}

function beat(name: string, model: string, queues: string[], silent = false): WorkerBeat {
  return { name, at: Date.now(), engine: 'http://e', model, engineDown: false, paused: [], unhealthy: null, window: 16, inFlight: 0, active: 0, queues, ageMs: 0, silent };
}

it('names a model no live worker serves, and says nothing of served or finished work', () => {
  const vl = beat('gpu0', 'vl', [SHARED_INFER_QUEUE, inferQueueFor('vl')]);
  expect(unservedWork([doc(1, 'vl'), doc(2, null)], [vl])).toEqual([]);
  const notes = unservedWork([doc(1, 'vl'), doc(2, 'vl-typo'), doc(3, 'vl-typo'), doc(4, 'other', 'written')], [vl]);
  expect(notes).toEqual([`model "vl-typo" (2 documents): no running worker serves it, so its work waits; start a worker whose engine serves it (running workers serve "vl")`]);
});

it('work naming no model waits when the only live workers are text-only (they skip the shared queue)', () => {
  const text = beat('cpu0', 'llm', [inferQueueFor('llm')]);
  expect(unservedWork([doc(1, null)], [text])[0]).toMatch(/^no running worker takes work that names no model \(1 document, the shared queue\)/);
});

it('silent workers serve nothing; no live worker at all is one line', () => {
  const gone = beat('gpu0', 'vl', [SHARED_INFER_QUEUE, inferQueueFor('vl')], true);
  expect(unservedWork([doc(1, 'vl')], [gone])).toEqual([expect.stringMatching(/^no worker has a heartbeat under this prefix \(1 silent\)/)]);
  expect(unservedWork([doc(1, 'vl')], [])).toEqual([expect.stringMatching(/\(none started\)/)]);
  expect(unservedWork([doc(1, 'vl', 'written')], [])).toEqual([]);
});

it("says the work of a model whose only workers take nothing now (budget spent, engine down, unhealthy), and why", () => {
  const q = [SHARED_INFER_QUEUE, inferQueueFor('vl')];
  const spent = { ...beat('gpu0', 'vl', q), paused: ['budget'] };
  expect(unservedWork([doc(1, 'vl'), doc(2, 'vl')], [spent])).toEqual([
    'model "vl" (2 documents): no worker that serves it takes work now, so its work waits (worker gpu0: intake paused: BUDGET_USD is spent)',
  ]);
  expect(unservedWork([doc(1, null)], [spent])).toEqual([expect.stringMatching(/^work that names no model \(1 document\): no worker that serves it takes work now, so its work waits \(worker gpu0: intake paused: BUDGET_USD is spent\)$/)]);
  const down = { ...beat('gpu1', 'vl', q), engineDown: true };
  expect(unservedWork([doc(1, 'vl')], [spent, down])[0]).toMatch(/\(worker gpu0: intake paused: BUDGET_USD is spent; worker gpu1: its engine http:\/\/e is down/);
  // One worker of the model still taking work: nothing to say; a fallback serving is taking work.
  expect(unservedWork([doc(1, 'vl')], [spent, beat('gpu2', 'vl', q)])).toEqual([]);
  expect(unservedWork([doc(1, 'vl')], [{ ...down, sendingTo: 'http://fallback' }])).toEqual([]);
  // Finished work, or work only the writer has left: nothing.
  expect(unservedWork([doc(1, 'vl', 'written'), doc(2, 'vl', 'complete')], [spent])).toEqual([]);
});

it('a paused queue is said for its unfinished work; the write queue paused, for every unfinished document', () => {
  const vl = beat('gpu0', 'vl', [SHARED_INFER_QUEUE, inferQueueFor('vl')]);
  const writer = { name: 'w', at: Date.now(), startedAt: null, out: '/out', written: 0, failed: 0, redisFull: false, ageMs: 0, silent: false };
  expect(unservedWork([doc(1, 'vl'), doc(2, 'vl')], [vl], { writers: [writer], pausedQueues: [inferQueueFor('vl')] })).toEqual([
    `queue "${inferQueueFor('vl')}" is paused (2 documents): no worker takes its work until it is resumed (Bull Board's Resume, or queue.resume())`,
  ]);
  expect(unservedWork([doc(1, 'vl', 'complete')], [vl], { writers: [writer], pausedQueues: ['write'] })).toEqual([
    `queue "write" is paused: no writer writes documents until it is resumed (Bull Board's Resume, or queue.resume()); 1 document has every unit answered`,
  ]);
  expect(unservedWork([doc(1, 'vl', 'written')], [vl], { writers: [writer], pausedQueues: [inferQueueFor('vl'), 'write'] })).toEqual([]);
});

it('--wait says nothing for its first WAIT_NOTES_AFTER_MS (workers started with it get to send a heartbeat), then what holds the work up', async () => {
  const redis = new Redis(TEST_REDIS_URL);
  try {
    const watch = unservedWatch(redis, prefix, { graceMs: 1500 });
    const started = Date.now();
    expect(await watch([doc(1, 'vl')])).toEqual([]);
    expect(Date.now() - started).toBeLessThan(1500); // else the first look was not inside the grace
    await new Promise((r) => setTimeout(r, 1600 - (Date.now() - started)));
    // No worker and no writer under this prefix: both said.
    const said = [expect.stringMatching(/^no worker has a heartbeat under this prefix \(none started\)/), expect.stringMatching(/^no writer has a heartbeat under this prefix \(none started\)/)];
    expect(await watch([doc(1, 'vl')])).toEqual(said);
    expect(await unservedWatch(redis, prefix, { graceMs: 0 })([doc(1, 'vl')])).toEqual(said);
  } finally {
    redis.disconnect();
  }
});
