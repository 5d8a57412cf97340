/**
 * `docbatch status --limit N` shows the newest N documents; a limit that is not a whole number
 * from 1 is a usage error (exit 2, one line naming the flag), never every document (`0` and `-1`
 * are "to the end" for Redis) or a Redis error with a stack trace (`abc`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../queues/connect.ts';
import { inferQueueFor } from '../../queues/routes.ts';
import { DocStore } from '../../src/store/docs.ts';
import type { DocMeta } from '../../src/store/types.ts';
import { runCli } from '../helpers/cli.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';

const prefix = uniquePrefix(import.meta.filename);
const redis = connectRedis(TEST_REDIS_URL, 'client');
const env = { REDIS_URL: TEST_REDIS_URL, DOCBATCH_PREFIX: prefix };
const ids = ['d'.padEnd(21, '1'), 'd'.padEnd(21, '2'), 'd'.padEnd(21, '3')];

beforeAll(async () => {
  const store = new DocStore(redis, prefix);
  for (const [i, docId] of ids.entries()) {
    const meta = { docId, kind: 'pdf', source: `/in/${docId}.pdf`, sha256: docId.padEnd(64, '0'), name: docId, outSub: '', units: 2, feedUnits: 2, blob: docId.padEnd(64, 'a'), pages: 2, task: { name: 'transcribe', unit: 'page', output: 'text', hash: 'h', blob: 'b' }, model: null, queue: 'infer', priority: 0 } as DocMeta;
    await store.register(meta, { reset: false, now: new Date(Date.parse('2026-03-02T12:00:00Z') + i * 1000).toISOString(), jobName: 'page' });
  }
});

afterAll(async () => {
  redis.disconnect();
  await deletePrefix(prefix);
});

describe('status --limit', () => {
  it('shows the newest N documents', async () => {
    const r = await runCli(['status', '--limit', '2', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const docs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { docId?: string }).filter((d) => d.docId);
    expect(docs.map((d) => d.docId)).toEqual([ids[2], ids[1]]);
  });

  it('says that its total is of the newest N only, and of how many', async () => {
    const text = await runCli(['status', '--limit', '2'], env);
    expect(text.stdout).toMatch(/^total: 2 documents, /m);
    expect(text.stdout).toMatch(/^the total is of the newest 2 of 3 documents: --limit 3 counts them all$/m);
    const lines = (await runCli(['status', '--limit', '2', '--json'], env)).stdout.trim().split('\n').map((l) => JSON.parse(l) as { total?: Record<string, unknown> });
    expect(lines.at(-1)!.total).toMatchObject({ documents: 2, documents_total: 3 });
    // All of them shown: nothing said, and the two figures agree.
    expect((await runCli(['status'], env)).stdout).not.toContain('the total is of the newest');
    const all = (await runCli(['status', '--json'], env)).stdout.trim().split('\n').map((l) => JSON.parse(l) as { total?: Record<string, unknown> });
    expect(all.at(-1)!.total).toMatchObject({ documents: 3, documents_total: 3 });
  });

  it('says work no running worker takes of documents older than the newest N too', async () => {
    // The oldest document names a model no worker serves; a worker serving the shared queue beats
    // (its heartbeat as src/infer/worker.ts writes it).
    const store = new DocStore(redis, prefix);
    const docId = 'd'.padEnd(21, '0');
    const meta = { docId, kind: 'pdf', source: `/in/${docId}.pdf`, sha256: docId.padEnd(64, '0'), name: docId, outSub: '', units: 2, feedUnits: 2, blob: docId.padEnd(64, 'a'), pages: 2, task: { name: 'transcribe', unit: 'page', output: 'text', hash: 'h', blob: 'b' }, model: 'typo-7b', queue: inferQueueFor('typo-7b'), priority: 0 } as DocMeta;
    await store.register(meta, { reset: false, now: '2026-03-02T11:00:00.000Z', jobName: 'page' });
    await redis.hset(`${prefix}:workers`, 'gpu0', JSON.stringify({ at: Date.now(), engine: 'http://e', model: 'vl', engineDown: false, paused: [], unhealthy: null, window: 4, inFlight: 0, active: 0, queues: ['infer', inferQueueFor('vl')] }));
    try {
      const r = await runCli(['status', '--limit', '1'], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).not.toContain(docId);
      expect(r.stdout).toMatch(/^model "typo-7b" \(1 document\): no running worker serves it/m);
    } finally {
      await redis.hdel(`${prefix}:workers`, 'gpu0');
    }
  });

  it.each(['0', '-1', 'abc', '2.5', ''])('refuses %j: exit 2, one line naming --limit', async (limit) => {
    const r = await runCli(['status', `--limit=${limit}`], env);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--limit must be a whole number from 1/);
  });
});
