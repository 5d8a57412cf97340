/**
 * The worker against an engine that misbehaves the ways real ones do (../shared/reference
 * vllm-api.md): vLLM's engine death on OOM above a batch size, per-request OOM, a hang, a 400 for
 * a prompt over the context, an engine killed and restarted. Every case ends with every unit in
 * the output, or listed as failed with its reason.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { acceptedIds, parseEcho, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

function pdfFile(dir: string, name: string, pages: number, words = 40): string {
  const path = join(dir, `${name}.pdf`);
  writeFileSync(path, numberedPdf(pages, words));
  return path;
}

/** Every page exactly once, in order; returns the failures. */
function checkPages(md: string, pages: number): Array<{ page: number; failed: string }> {
  const markers = [...md.matchAll(/^<!-- page (\d+)/gm)].map((m) => Number(m[1]));
  expect(markers).toEqual(Array.from({ length: pages }, (_, i) => i + 1));
  const parsed = parsePages(md);
  const failures: Array<{ page: number; failed: string }> = [];
  for (const [page, { body, failed }] of parsed) {
    if (failed) failures.push({ page, failed });
    else expect(parseEcho(body).text?.first ?? '', `page ${page}`).toContain(`Page ${page} of ${pages}`);
  }
  return failures;
}

describe('engine faults', () => {
  it('engine death above 6 concurrent images: a 120-page PDF completes, the window settles at or under 6, then grows back', async () => {
    p = await startPipeline({
      file: import.meta.filename,
      emulator: { oomAtConcurrentImages: 6, oomMode: 'death', deathExitMs: 100, restartDelayMs: 400, speed: 5 },
      config: { initialInFlight: 16, cleanIntervalMs: 300, ceilingHoldMs: 4000 },
    });
    // Every unit waiting for the dead engine listens for its return: that is no leak, and a
    // worker must not print Node's "possible EventEmitter memory leak" warning for it.
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    // The window's size every 50 ms once the engine has died: where it settled.
    const after: number[] = [];
    const watch = setInterval(() => {
      if (p!.engine.stats().deaths > 0) after.push(p!.worker!.engine.window.size);
    }, 50);
    const ids = acceptedIds(await p.enqueue([pdfFile(p.dir, 'book', 120)]));
    await p.wait(ids, 120_000).finally(() => {
      process.off('warning', onWarning);
      clearInterval(watch);
    });
    const failures = checkPages(readFileSync(join(p.config.outDir, 'book.md'), 'utf8'), 120);
    expect(failures).toEqual([]);
    expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([]);
    const deaths = p.engine.stats().deaths;
    expect(deaths).toBeGreaterThanOrEqual(1);
    expect(deaths).toBeLessThanOrEqual(8);
    // Settled: from the first death on, the window spent most of its time at or under 6. At the
    // end it is there too, unless the backoff clock has just stepped onto the remembered failing
    // size (7) after its hold: the one probe it makes, which a slow machine may reach before the
    // last page and whose death the run may end too soon to see.
    expect(after.length).toBeGreaterThan(20);
    const over = after.filter((size) => size > 6).length / after.length;
    expect(over).toBeLessThan(0.25);
    const end = p.worker!.engine.window.snapshot();
    if (end.size > 6) {
      expect(end).toMatchObject({ size: 7, ceiling: 7, state: 'backoff' });
      expect(end.lastChange?.reason).toBe('clean interval: probing the ceiling');
    }

    // The limit lifted: the window grows back past it.
    p.engine.setFaults({ oomAtConcurrentImages: null });
    let biggest = 0;
    const sampler = setInterval(() => (biggest = Math.max(biggest, p!.worker!.engine.window.size)), 50);
    const more = acceptedIds(await p.enqueue([pdfFile(p.dir, 'second', 150, 41)]));
    await p.wait(more, 120_000);
    clearInterval(sampler);
    expect(biggest).toBeGreaterThan(6);
    expect(p.engine.stats().deaths).toBe(deaths);
  }, 240_000);

  it('per-request "CUDA out of memory" above 4 images: everything completes and the window stays at or under 4', async () => {
    p = await startPipeline({
      file: import.meta.filename,
      emulator: { oomAtConcurrentImages: 4, oomMode: 'request', speed: 5 },
      config: { initialInFlight: 12, cleanIntervalMs: 500, ceilingHoldMs: 60_000 },
    });
    const ids = acceptedIds(await p.enqueue([pdfFile(p.dir, 'doc', 40)]));
    await p.wait(ids, 120_000);
    expect(checkPages(readFileSync(join(p.config.outDir, 'doc.md'), 'utf8'), 40)).toEqual([]);
    expect(p.engine.stats().deaths).toBe(0);
    expect(p.worker!.engine.window.size).toBeLessThanOrEqual(4);
  }, 180_000);

  it('per-request OOM while the halved window still does not fit and the answers that fit are slow: halves again, no page fails', async () => {
    // Twelve sent, four fit: the cut to six still sends two that fail at once, again and again,
    // while the four that fit take seconds. Those failures are news (sent after the cut), not
    // stragglers of it; folding them into the first episode left the window at six until units
    // ran out of sends with ENGINE_OOM.
    p = await startPipeline({
      file: import.meta.filename,
      emulator: { oomAtConcurrentImages: 4, oomMode: 'request', speed: 1, outputTokensMin: 150, outputTokensMax: 150 },
      config: { initialInFlight: 12, cleanIntervalMs: 60_000, ceilingHoldMs: 60_000 },
    });
    const ids = acceptedIds(await p.enqueue([pdfFile(p.dir, 'slow', 12)]));
    await p.wait(ids, 120_000);
    expect(checkPages(readFileSync(join(p.config.outDir, 'slow.md'), 'utf8'), 12)).toEqual([]);
    expect(p.worker!.engine.window.size).toBeLessThanOrEqual(4);
  }, 180_000);

  it('a page that runs out of memory even alone is rendered smaller, then fails for good with ENGINE_OOM', async () => {
    p = await startPipeline({
      file: import.meta.filename,
      emulator: { oomAtConcurrentImages: 0, oomMode: 'request' },
      config: { initialInFlight: 4 },
    });
    const ids = acceptedIds(await p.enqueue([pdfFile(p.dir, 'heavy', 2)]));
    await p.wait(ids, 60_000);
    const failures = checkPages(readFileSync(join(p.config.outDir, 'heavy.md'), 'utf8'), 2);
    expect(failures.map((f) => f.failed.split(':')[0])).toEqual(['ENGINE_OOM', 'ENGINE_OOM']);
    expect(failures[0]!.failed).toMatch(/512 px/);
    const report = JSON.parse(readFileSync(join(p.config.outDir, 'heavy.report.json'), 'utf8'));
    expect(report.failed.map((f: { code: string }) => f.code)).toEqual(['ENGINE_OOM', 'ENGINE_OOM']);
    expect(report.completed).toBe(0);
  }, 120_000);

  it('the engine killed and restarted mid-run: completes with no failed unit and no attempt used', async () => {
    p = await startPipeline({ file: import.meta.filename, emulator: { deathExitMs: 100, restartDelayMs: 1500 } });
    const ids = acceptedIds(await p.enqueue([pdfFile(p.dir, 'long', 60)]));
    const store = p.store;
    for (let i = 0; i < 400; i++) {
      const r = await store.get(ids[0]!);
      if (r && r.done >= 10) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    p.engine.kill();
    await p.wait(ids, 120_000);
    expect(checkPages(readFileSync(join(p.config.outDir, 'long.md'), 'utf8'), 60)).toEqual([]);
    expect(p.engine.stats().deaths).toBe(1);
    // Units that met the dead engine waited for it instead of failing: no job used a retry.
    const infer = await import('../../queues/connect.ts').then((m) => m.openQueue('infer', p!.config, p!.redis));
    const jobs = await infer.getJobs(['completed'], 0, 100);
    expect(jobs.length).toBe(60);
    expect(jobs.every((j) => j.attemptsMade <= 1)).toBe(true);
    await infer.close();
  }, 180_000);

  it('a hung request times out, its connection is closed, and the unit is retried', async () => {
    p = await startPipeline({
      file: import.meta.filename,
      emulator: { hang: { every: 7 } },
      config: { requestTimeoutMs: 1500 },
    });
    const ids = acceptedIds(await p.enqueue([pdfFile(p.dir, 'hangs', 20)]));
    await p.wait(ids, 120_000);
    expect(checkPages(readFileSync(join(p.config.outDir, 'hangs.md'), 'utf8'), 20)).toEqual([]);
    expect(p.engine.stats().aborted).toBeGreaterThanOrEqual(1);
  }, 180_000);

  it('one chunk over the context among 16: 15 succeed, that one fails with CONTEXT_TOO_LONG', async () => {
    p = await startPipeline({ file: import.meta.filename, emulator: { maxModelLen: 1500 }, config: { chatMaxTokens: 256 } });
    const lines: string[] = [];
    for (let i = 0; i < 16; i++) {
      const long = i === 9;
      const words = Array.from({ length: long ? 1000 : 60 }, (_, w) => `word${(w * 13 + i) % 97}`).join(' ');
      lines.push(JSON.stringify({ id: `conv-${i}`, title: `Conversation ${i}`, messages: [{ role: 'user', content: words }, { role: 'assistant', content: `Answer ${i}.` }] }));
    }
    const file = join(p.dir, 'chats.jsonl');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const ids = acceptedIds(await p.enqueue([file]));
    await p.wait(ids, 60_000);
    const out = readFileSync(join(p.config.outDir, 'chats.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(out).toHaveLength(16);
    const failed = out.filter((l) => l.summary === null);
    expect(failed.map((l) => [l.conversation_id, l.error.code])).toEqual([['conv-9', 'CONTEXT_TOO_LONG']]);
    expect(failed[0].error.message).toMatch(/maximum context length is 1500/);
    expect(out.filter((l) => typeof l.summary === 'string')).toHaveLength(15);
    const report = JSON.parse(readFileSync(join(p.config.outDir, 'chats.report.json'), 'utf8'));
    expect(report).toMatchObject({ units: 16, completed: 15, failed: [{ code: 'CONTEXT_TOO_LONG', conversation_id: 'conv-9' }] });
  }, 120_000);
});
