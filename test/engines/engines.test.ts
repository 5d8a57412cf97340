/**
 * Issue 11: a down engine releases its work to healthy workers; fallback engines take over while
 * the primary is down; a paid endpoint's rate limits are kept by all its workers together and a
 * 429 never fails a unit.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { until } from '../helpers/until.ts';

let p: Pipeline | undefined;
const engines: Emulator[] = [];
afterEach(async () => {
  await p?.stop();
  for (const e of engines.splice(0)) await e.close();
  p = undefined;
});

async function emulator(options: Parameters<typeof startEmulator>[0]): Promise<Emulator> {
  const e = await startEmulator({ outputTokensMin: 20, outputTokensMax: 60, ...options });
  engines.push(e);
  return e;
}

/** Pages present once each, none failed. */
function expectWhole(md: string, pages: number): void {
  const parsed = parsePages(md);
  expect([...parsed.keys()]).toEqual(Array.from({ length: pages }, (_, i) => i + 1));
  expect([...parsed.values()].filter((x) => x.failed)).toEqual([]);
}

describe('a down engine releases its work', () => {
  it("a worker whose engine died hands its units back within ENGINE_RELEASE_AFTER_MS; a healthy worker does them, each once", async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 2 } });
    const dying = await emulator({ speed: 2, restartDelayMs: 600_000, deathExitMs: 50 });
    // A small window: most of its units wait at the gate of the engine that dies, not in flight.
    const a = await p.startWorker({ engineUrl: dying.url, workerName: 'a', engineReleaseMs: 2000, initialInFlight: 4, maxInFlight: 4, batchSize: 16 });
    const pdf = join(p.dir, 'seventeen.pdf');
    writeFileSync(pdf, numberedPdf(17));
    const ids = acceptedIds(await p.enqueue([pdf]));
    await until('worker a holds units at its engine', () => a.activeUnits >= 10 && dying.stats().requests >= 3);
    dying.kill();
    const killedAt = Date.now();
    const b = await p.startWorker({ workerName: 'b' });
    const [done] = await p.wait(ids, 60_000);
    expect(done!.record).toMatchObject({ done: 17, failed: 0 });
    // Released within the bound, not after an engine-down timeout of an hour.
    expect(Date.now() - killedAt).toBeLessThan(2000 + 20_000);
    expectWhole(readFileSync(join(p.config.outDir, 'seventeen.md'), 'utf8'), 17);
    // Each page was answered once in all (the two image probes aside).
    expect(dying.stats().completed + p.engine.stats().completed - 2).toBe(17);
    // What status reads: worker a says its engine is down.
    const beat = JSON.parse((await p.redis.hget(`${p.config.prefix}:workers`, 'a'))!) as { engineDown: boolean; paused: string[] };
    expect(beat.engineDown).toBe(true);
    expect(beat.paused).toContain('engine');
    expect(b.unhealthy).toBeNull();
  }, 90_000);
});

describe('fallback engines', () => {
  it('the primary killed mid-run: units go to the fallback, none fails, none is done twice, the report names both engines', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false });
    const primary = await emulator({ speed: 3, restartDelayMs: 600_000, deathExitMs: 50 });
    const fallback = await emulator({ speed: 20 });
    await p.startWorker({ engineUrl: primary.url, fallbackEngineUrls: [fallback.url], fallbackAfterMs: 500, engineReleaseMs: 600_000, initialInFlight: 8 });
    const pdf = join(p.dir, 'forty.pdf');
    writeFileSync(pdf, numberedPdf(40));
    const ids = acceptedIds(await p.enqueue([pdf]));
    await until('some pages done at the primary', async () => ((await p!.store.get(ids[0]!))?.done ?? 0) >= 5);
    primary.kill();
    const [done] = await p.wait(ids, 60_000);
    expect(done!.record).toMatchObject({ done: 40, failed: 0 });
    expectWhole(readFileSync(join(p.config.outDir, 'forty.md'), 'utf8'), 40);
    expect(primary.stats().completed - 1 + fallback.stats().completed).toBe(40);
    const report = JSON.parse(readFileSync(join(p.config.outDir, 'forty.report.json'), 'utf8')) as { engines: Record<string, number> };
    expect(Object.keys(report.engines).sort()).toEqual([primary.url, fallback.url].sort());
    expect(report.engines[fallback.url]).toBeGreaterThan(0);
    expect(Object.values(report.engines).reduce((a, b) => a + b, 0)).toBe(40);
  }, 90_000);
});

describe('a rate-limited endpoint', () => {
  /** A JSONL export of `n` small conversations. */
  function chats(dir: string, n: number): string {
    const path = join(dir, 'chats.jsonl');
    writeFileSync(path, `${Array.from({ length: n }, (_, i) => JSON.stringify({ id: `c${i}`, title: `T${i}`, messages: [{ role: 'user', content: `Question ${i}?` }, { role: 'assistant', content: `Answer ${i}.` }] })).join('\n')}\n`);
    return path;
  }

  it('two workers keep to ENGINE_RPM together: windows use the limit within 5%, never above, no unit failed', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false });
    const paid = await emulator({ speed: 1000, rateLimit: { rpm: 20, windowMs: 2000 } });
    const limits = { engineUrl: paid.url, engineRpm: 20, engineRateWindowMs: 2000 };
    await p.startWorker({ ...limits, workerName: 'w1' });
    await p.startWorker({ ...limits, workerName: 'w2' });
    const ids = acceptedIds(await p.enqueue([chats(p.dir, 120)]));
    const [done] = await p.wait(ids, 90_000);
    expect(done!.record).toMatchObject({ done: 120, failed: 0 });
    const windows = paid.stats().rateLimitWindows.filter((w) => w.acceptedRequests > 0);
    // The endpoint never had to refuse: the workers kept below its limit.
    expect(windows.reduce((n, w) => n + w.refusedRequests, 0)).toBe(0);
    for (const w of windows) expect(w.acceptedRequests).toBeLessThanOrEqual(20);
    // Every window the run spans, those it sent nothing in too (the emulator lists only windows
    // that had requests): a limiter that waits too long sends its bursts of 20 whole, a window
    // apart or more, and only the empty windows between them show it.
    const first = windows[0]!.start;
    const spanned = Array.from({ length: Math.round((windows.at(-1)!.start - first) / 2000) + 1 }, (_, i) =>
      windows.filter((w) => Math.round((w.start - first) / 2000) === i).reduce((n, w) => n + w.acceptedRequests, 0),
    );
    // Windows in the middle of the run use the limit: within 5% on average. Not the first (the
    // run starts in it) nor the last two: the last burst of sends can straddle a boundary (the
    // emulator's windows are fixed, the limiter's slides), leaving, say, 16 and 4 + the tail.
    // A limiter waiting a quarter too long leaves an empty window in six and fails this (a mean of
    // 15 or less over four); 10% too long drifts a burst past a boundary only after ten windows,
    // longer than this run. 18, not 19: on a loaded 2-core machine (three test files at a time,
    // both workers in this process) one middle window fell to 16, [20,19,16,19], in a fresh-clone
    // run (2026-12-03) that passed every other test; it passed in the run before.
    const middle = spanned.slice(1, -2);
    expect(middle.length).toBeGreaterThanOrEqual(3);
    const mean = middle.reduce((n, w) => n + w, 0) / middle.length;
    expect(mean, JSON.stringify(spanned)).toBeGreaterThanOrEqual(18);
  }, 120_000);

  it('an endpoint stricter than the configured limit answers 429 with Retry-After: honoured, no unit failed, never above its limit', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false });
    const paid = await emulator({ speed: 50, rateLimit: { rpm: 15, windowMs: 2000 } });
    await p.startWorker({ engineUrl: paid.url, engineRpm: 40, engineRateWindowMs: 2000 });
    const ids = acceptedIds(await p.enqueue([chats(p.dir, 60)]));
    const [done] = await p.wait(ids, 90_000);
    expect(done!.record).toMatchObject({ done: 60, failed: 0 });
    const windows = paid.stats().rateLimitWindows;
    expect(windows.reduce((n, w) => n + w.refusedRequests, 0)).toBeGreaterThan(0);
    for (const w of windows) expect(w.acceptedRequests).toBeLessThanOrEqual(15);
  }, 120_000);
});
