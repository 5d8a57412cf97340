/**
 * `units_without_usage` counts units whose tokens the engine did not (all) report, once each:
 * a failed unit reopened by a retry and settled again without usage counted twice before (it
 * counted settles), before and after the document was written. And a failed chat chunk's line
 * says `"usage": null` (no answer, nothing reported) or what its rejected answers reported: it
 * said `{"prompt_tokens": 0, "completion_tokens": 0}`, a made-up 0 that a reader summing the
 * lines counts as known. Real Redis, a real worker, writer and emulator.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import type { UnitResult } from '../../src/store/types.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { SMALL_CONTEXT, writeInputs } from '../observe/fixtures.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

const rejected: UnitResult = { ok: false, code: 'OUTPUT_TRUNCATED', message: 'cut off', promptTokens: null, completionTokens: null, engineMs: 5 };
const answered: UnitResult = { ok: true, text: 'x', promptTokens: null, completionTokens: null, engineMs: 5, latencyMs: 5, model: 'm', finishReason: 'stop' };

it('a unit reopened and settled again without usage is counted once, before and after its document was written', async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false });
  const pdf = join(p.dir, 'two.pdf');
  writeFileSync(pdf, numberedPdf(2));
  const [docId] = acceptedIds(await p.enqueue([pdf]));
  const { store } = p;
  const without = async () => (await store.get(docId!))!.unitsWithoutUsage;

  expect((await store.settle(docId!, 1, 0, rejected)).outcome).toBe('recorded');
  expect(await without()).toBe(1);
  expect(await store.reopen(docId!, 1, { codes: [], units: [0], summaries: {}, groups: {} })).toEqual([0]);
  expect((await store.settle(docId!, 1, 0, rejected)).outcome).toBe('recorded');
  expect(await without()).toBe(1);
  expect((await store.settle(docId!, 1, 1, answered)).outcome).toBe('recorded');
  expect(await without()).toBe(2);

  // Written (results gone from Redis), then restored and reopened by a retry: still once a unit.
  const record = (await store.get(docId!))!;
  expect(await store.markWritten(docId!, 1, { files: [], now: new Date().toISOString(), reopens: record.reopens, retentionSeconds: 3600 })).toBe('written');
  expect(await p.redis.ttl(store.noUsageKey(docId!, 1))).toBeGreaterThan(3000);
  expect(await store.restoreResults(docId!, 1, [[0, JSON.stringify(rejected)], [1, JSON.stringify(answered)]], record.reopens)).toBe('restored');
  expect(await store.reopen(docId!, 1, { codes: [], units: [], summaries: {}, groups: {} })).toEqual([0]);
  expect(await p.redis.ttl(store.noUsageKey(docId!, 1))).toBe(-1);
  expect((await store.settle(docId!, 1, 0, rejected)).outcome).toBe('recorded');
  expect(await without()).toBe(2);

  // --force: a new generation counts from 0; the old one's bits expire with its results.
  const [again] = await p.enqueue([pdf], { force: true });
  expect(again!.runs![0]!.gen).toBe(2);
  expect(await without()).toBe(0);
  expect(await p.redis.ttl(store.noUsageKey(docId!, 1))).toBeGreaterThan(0);
  expect((await store.settle(docId!, 2, 0, rejected)).outcome).toBe('recorded');
  expect(await without()).toBe(1);
}, 60_000);

it('a failed chat chunk says "usage": null, not zeros', async () => {
  p = await startPipeline({ file: import.meta.filename, emulator: { maxModelLen: SMALL_CONTEXT } });
  const { chat } = await writeInputs(p.dir, { pages: 1, tag: 'mixed' });
  const [docId] = acceptedIds(await p.enqueue([chat]));
  const [done] = await p.wait([docId!], 60_000);
  const lines = readFileSync(join(p.config.outDir, 'mixed.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { usage: unknown; error?: { code: string } });
  expect(done!.record, JSON.stringify(lines)).toMatchObject({ state: 'written', done: 1, failed: 2, unitsWithoutUsage: 0 });
  const failed = lines.filter((l) => l.error);
  expect(failed).toEqual([expect.objectContaining({ error: expect.objectContaining({ code: 'CONTEXT_TOO_LONG' }), usage: null }), expect.objectContaining({ usage: null })]);
  const fine = lines.find((l) => !l.error);
  expect(fine!.usage).toEqual({ prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) });
  const report = JSON.parse(readFileSync(join(p.config.outDir, 'mixed.report.json'), 'utf8')) as Record<string, unknown>;
  expect(report).toMatchObject({ units_without_usage: 0 });
  expect(report.tokens_note).toBeUndefined();
}, 60_000);
