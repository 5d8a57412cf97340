/**
 * Answers you can trust (issue 9): with an engine that loops on 30% of the answers it gives
 * first, no looping answer is kept and every page ends with a real answer (asked again at a
 * higher temperature, not the text-layer fallback); with a page-unit JSON task and an engine that
 * breaks 30% of its first JSON answers, `X.jsonl` has one validated line per page, in order. The
 * reports count exactly the rejected answers the engine gave, per unit.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf, writePdf } from '../../scripts/lib/pdf-writer.ts';
import type { Emulator } from '../../src/emulator/index.ts';
import { tailLoop } from '../../src/task/answer.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

/** Flawed answers the engine gave for one document's requests, by unit. */
function flawsByUnit(engine: Emulator, docId: string, flaw: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const a of engine.answers()) {
    const m = /^chatcmpl-(d[0-9a-f]{20})-\d+-(\d+)/.exec(a.id);
    if (!m || m[1] !== docId || !a.flaw) continue;
    expect(a.flaw).toBe(flaw);
    out.set(Number(m[2]), (out.get(Number(m[2])) ?? 0) + 1);
  }
  return out;
}

describe('answers that fail the checks are asked again, never kept', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await startPipeline({ file: import.meta.filename, config: { pageMaxTokens: 300, imageSize: 512 } });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('an engine looping on 30% of first answers: every page ends with a real answer', async () => {
    p.engine.setFaults({ loop: 0.3 });
    const file = join(p.dir, 'looping.pdf');
    writeFileSync(file, numberedPdf(30, 40));
    const [docId] = acceptedIds(await p.enqueue([file]));
    const [done] = await p.wait([docId!], 180_000);
    p.engine.setFaults({ loop: 0 });
    expect(done!.record).toMatchObject({ state: 'written', done: 30, failed: 0 });

    const loops = flawsByUnit(p.engine, docId!, 'loop');
    expect(loops.size).toBeGreaterThanOrEqual(3); // 30% of 30 contents, picked by hash
    const pages = parsePages(readFileSync(join(p.config.outDir, 'looping.md'), 'utf8'));
    expect([...pages.keys()]).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    for (const [n, page] of pages) {
      expect(page.failed, `page ${n}`).toBeNull();
      // The engine's own answer (its echo header), not a fallback, and no loop at its end.
      expect(page.body, `page ${n}`).toMatch(/^\[emulated reply by [^\]]+\]\nimage 1: /);
      expect(page.body).not.toContain('fallback');
      expect(tailLoop(page.body), `page ${n}`).toBeNull();
      expect(page.body, `page ${n}`).toContain(`first="Page ${n} of 30`);
    }
    const report = JSON.parse(readFileSync(join(p.config.outDir, 'looping.report.json'), 'utf8')) as Record<string, unknown>;
    const looped = [...loops.values()].reduce((s, n) => s + n, 0);
    expect(report).toMatchObject({ completed: 30, failed: [], fallbacks: { count: 0, units: [] }, retries: { OUTPUT_REPETITIVE: looped } });
  }, 200_000);

  it('a page-unit JSON task while 30% of first JSON answers are broken: X.jsonl, one valid line per page', async () => {
    p.engine.setFaults({ invalidJson: 0.3 });
    const file = join(p.dir, 'chapters.pdf');
    writeFileSync(file, writePdf({ pages: Array.from({ length: 24 }, (_, i) => ({ lines: [`Heading: Chapter ${i + 1}`, `Page number: ${i + 1}`, 'Some words that are not a field.'] })) }));
    const schema = join(p.dir, 'chapter.json');
    writeFileSync(schema, JSON.stringify({ type: 'object', properties: { heading: { type: 'string' }, page_number: { type: 'integer' } }, required: ['heading', 'page_number'], additionalProperties: false }));
    const [docId] = acceptedIds(await p.enqueue([file], { task: { schema, prompt: 'The heading and page number of this page.' } }));
    const [done] = await p.wait([docId!], 180_000);
    p.engine.setFaults({ invalidJson: 0 });
    expect(done!.record).toMatchObject({ state: 'written', done: 24, failed: 0 });

    const broken = flawsByUnit(p.engine, docId!, 'invalidJson');
    expect(broken.size).toBeGreaterThanOrEqual(1); // 30% of 24 contents, picked by their hash (2 with PDFium's images)
    const lines = readFileSync(join(p.config.outDir, 'chapters.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { page: number; data: unknown });
    expect(lines.map((l) => l.page)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
    for (const l of lines) expect(l.data).toEqual({ heading: `Chapter ${l.page}`, page_number: l.page });
    const report = JSON.parse(readFileSync(join(p.config.outDir, 'chapters.report.json'), 'utf8')) as Record<string, unknown>;
    const rejected = [...broken.values()].reduce((s, n) => s + n, 0);
    expect(report).toMatchObject({ task: { name: 'extract', unit: 'page', output: 'json' }, completed: 24, failed: [], retries: { OUTPUT_INVALID: rejected } });
  }, 200_000);
});
