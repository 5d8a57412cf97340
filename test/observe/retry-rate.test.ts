/**
 * Rates and time left that tell the truth when work comes in runs apart: a document retried an
 * hour after it was written (its rate and ETA are those of the retry, not of the retry spread over
 * the hour since its first unit), and yesterday's batch listed beside today's (the total's rate
 * leaves out the hours in which nothing ran). Records written by the real Lua scripts (settle,
 * reopen) in a real Redis, read as `docbatch status --json` and the dashboard's JSON read them.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../queues/connect.ts';
import { documentJson } from '../../src/observe/documents.ts';
import { progressOf, totalsOf } from '../../src/observe/progress.ts';
import { DocStore } from '../../src/store/docs.ts';
import type { DocMeta, UnitResult } from '../../src/store/types.ts';
import { runCli } from '../helpers/cli.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';

const prefix = uniquePrefix(import.meta.filename);
const redis = connectRedis(TEST_REDIS_URL, 'client');
const store = new DocStore(redis, prefix);
const HOUR = 3_600_000;

afterAll(async () => {
  redis.disconnect();
  await deletePrefix(prefix);
});

const ok: UnitResult = { ok: true, text: 'x', promptTokens: 10, completionTokens: 5, engineMs: 100, latencyMs: 100, model: 'm', finishReason: 'stop' };
const bad: UnitResult = { ok: false, code: 'BAD_REQUEST', message: 'engine rejected the request (400)' };

function meta(docId: string, units: number): DocMeta {
  return {
    docId, kind: 'pdf', source: `/in/${docId}.pdf`, sha256: docId.padEnd(64, '0'), name: docId, outSub: '', units, feedUnits: units, blob: docId.padEnd(64, 'a'),
    pages: units, task: { name: 'transcribe', unit: 'page', output: 'text', hash: 'h', blob: 'b' }, model: null, queue: 'infer', priority: 0,
  } as DocMeta;
}

/** A document of `units` pages whose units settled one a second from `start` (ms), `failed` of them failing; written after. */
async function runAt(docId: string, units: number, failed: number, start: number): Promise<void> {
  await store.register(meta(docId, units), { reset: false, now: new Date(start - 1000).toISOString(), jobName: 'page' });
  await store.setState(docId, 'running');
  for (let unit = 0; unit < units; unit++) await store.settle(docId, 1, unit, unit < failed ? bad : ok, undefined, undefined, new Date(start + unit * 1000).toISOString());
  await store.setState(docId, 'written', { written_at: new Date(start + units * 1000).toISOString() });
}

describe('a document retried an hour after it was written', () => {
  it('shows the rate and time left of the retry, in status and in the dashboard', async () => {
    const docId = 'd'.padEnd(21, 'a');
    await runAt(docId, 14, 11, Date.now() - HOUR);
    const reopened = await store.reopen(docId, 1, { codes: [], units: [], summaries: {}, groups: {} });
    expect(reopened).toHaveLength(11);
    // The retry answers two units within a second.
    await new Promise((r) => setTimeout(r, 500));
    await store.settle(docId, 1, 0, ok);
    await store.settle(docId, 1, 1, ok);
    await new Promise((r) => setTimeout(r, 500));

    const record = (await store.get(docId))!;
    expect(record).toMatchObject({ state: 'running', done: 5, failed: 0 });
    const p = progressOf(record);
    // Two units within a second or so (seconds more while the CLI below starts on a busy machine),
    // 9 units left: not 5 units over an hour (0.0014/s, ETA ~2 h).
    expect(p.rate!).toBeGreaterThan(0.2);
    expect(p.etaSeconds!).toBeLessThan(60);
    expect(documentJson(record).eta_seconds!).toBeLessThan(60);

    const r = await runCli(['status', docId, '--json'], { REDIS_URL: TEST_REDIS_URL, DOCBATCH_PREFIX: prefix });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout.split('\n')[0]!) as { rate: number; eta_seconds: number };
    expect(doc.rate).toBeGreaterThan(0.05);
    expect(doc.eta_seconds).toBeLessThan(600);
    const total = (JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { total: { rate: number; eta_seconds: number } }).total;
    expect(total.rate).toBeGreaterThan(0.05);
    expect(total.eta_seconds).toBeLessThan(600);
  });
});

describe("yesterday's batch beside today's", () => {
  it("gives a total rate over the time documents ran, not over the day between", () => {
    const now = Date.parse('2026-03-02T12:00:00Z');
    const record = (docId: string, start: number, settled: number, finished: boolean) => ({
      docId, meta: meta(docId, 20), gen: 1, units: 20, state: finished ? ('written' as const) : ('running' as const), done: settled, failed: 0,
      promptTokens: 0, completionTokens: 0, unitsWithoutUsage: 0, engineMs: 0, createdAt: new Date(start).toISOString(), startedAt: new Date(start).toISOString(),
      finishedAt: finished ? new Date(start + 20_000).toISOString() : null, resumedAt: null, resumedFrom: 0, writtenAt: null, files: [], writeError: null, fed: 0, reopens: 0,
    });
    // Yesterday: 20 units in 20 s. Today: 10 of 20 units in the last 10 s.
    const yesterday = record('d'.padEnd(21, '1'), now - 24 * HOUR, 20, true);
    const today = record('d'.padEnd(21, '2'), now - 10_000, 10, false);
    const t = totalsOf([progressOf(yesterday, now), progressOf(today, now)], now);
    expect(t.rate!).toBeCloseTo(30 / 30, 5);
    expect(t.etaSeconds!).toBeCloseTo(10, 5);
  });
});
