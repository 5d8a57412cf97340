/**
 * Nothing done twice (../shared/reference/reliability.md, fault case 13): the same content
 * enqueued again is the same document; units that finished are never sent to the engine again;
 * a producer interrupted half-way and rerun leaves no duplicates and no gaps; --force redoes.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { openQueue } from '../../queues/connect.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

describe('resume and idempotency', () => {
  it('the same file again resumes; finished units are not sent again; done stays done; --force redoes', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 5 } });
    const pdf = join(p.dir, 'report.pdf');
    writeFileSync(pdf, numberedPdf(30));
    const [first] = await p.enqueue([pdf]);
    expect(first!.runs![0]).toMatchObject({ outcome: 'enqueued', units: 30 });
    const docId = first!.runs![0]!.docId;

    // A worker does part of it and stops (draining what it has in flight).
    const worker = await p.startWorker({ initialInFlight: 4, maxInFlight: 4, batchSize: 2 });
    for (let i = 0; i < 400 && ((await p.store.get(docId))?.done ?? 0) < 10; i++) await new Promise((r) => setTimeout(r, 25));
    await worker.close({ deadlineMs: 10_000 });
    const partly = (await p.store.get(docId))!;
    expect(partly.done).toBeGreaterThanOrEqual(10);
    expect(partly.done).toBeLessThan(30);

    const [again] = await p.enqueue([pdf]);
    expect(again!.runs![0]).toMatchObject({ docId, outcome: 'resumed', settled: partly.done });

    await p.startWorker();
    await p.wait([docId]);
    // Every unit went to the engine exactly once across both workers and both enqueues (plus one
    // image probe per worker start).
    expect(p.engine.stats().completed).toBe(30 + 2);
    const md = readFileSync(join(p.config.outDir, 'report.md'), 'utf8');
    expect([...parsePages(md).keys()]).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));

    const [third] = await p.enqueue([pdf]);
    expect(third!.runs![0]!.outcome).toBe('done');

    rmSync(join(p.config.outDir, 'report.md'));
    const [fourth] = await p.enqueue([pdf]);
    expect(fourth!.runs![0]!.outcome).toBe('rewrite');
    for (let i = 0; i < 200 && (await p.store.get(docId))!.writtenAt === partly.writtenAt; i++) await new Promise((r) => setTimeout(r, 25));
    await p.wait([docId]);
    await new Promise((r) => setTimeout(r, 200));
    expect(readFileSync(join(p.config.outDir, 'report.md'), 'utf8')).toBe(md);
    expect(p.engine.stats().completed).toBe(30 + 2);

    const [forced] = await p.enqueue([pdf], { force: true });
    expect(forced!.runs![0]).toMatchObject({ outcome: 'enqueued', gen: 2 });
    await p.wait([docId]);
    expect(p.engine.stats().completed).toBe(60 + 2);
  }, 120_000);

  it('the feeder keeps the wait list at FEED_DEPTH; a producer interrupted half-way and run again leaves no duplicates and no gaps', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, config: { feedDepth: 20 } });
    const pdfs = [0, 1, 2, 3].map((i) => {
      const path = join(p!.dir, `big${i}.pdf`);
      writeFileSync(path, numberedPdf(30, 10 + i));
      return path;
    });
    const infer = openQueue('infer', p.config, p.redis);
    const interrupt = new AbortController();
    // Killed after its second document went in.
    let seen = 0;
    const producing = p.enqueue(pdfs, { signal: interrupt.signal, onOutcome: () => ++seen === 2 && interrupt.abort(new Error('killed')) });
    await expect(producing).rejects.toThrow();
    // No worker takes anything: the feeder put at most FEED_DEPTH units into BullMQ; the rest wait their turn.
    expect(await infer.getWaitingCount()).toBeLessThanOrEqual(20);

    const rerun = await p.enqueue(pdfs);
    expect(rerun.map((o) => o.runs![0]!.outcome)).toEqual(['resumed', 'resumed', 'enqueued', 'enqueued']);
    expect(await infer.getWaitingCount()).toBe(20);
    await p.startWorker();
    await p.wait(acceptedIds(rerun));
    expect(p.engine.stats().completed).toBe(120 + 1); // + the worker's image probe
    for (let i = 0; i < 4; i++) {
      const pages = parsePages(readFileSync(join(p.config.outDir, `big${i}.md`), 'utf8'));
      expect([...pages.keys()]).toEqual(Array.from({ length: 30 }, (_, k) => k + 1));
    }
    await infer.close();
  }, 120_000);

  it('two inputs with the same base name get the hash suffix; the same content twice is one document', async () => {
    p = await startPipeline({ file: import.meta.filename });
    const a = join(p.dir, 'a');
    const b = join(p.dir, 'b');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(a);
    mkdirSync(b);
    writeFileSync(join(a, 'notes.pdf'), numberedPdf(2));
    writeFileSync(join(b, 'notes.pdf'), numberedPdf(3));
    writeFileSync(join(p.dir, 'copy.pdf'), numberedPdf(2));
    const outcomes = await p.enqueue([join(a, 'notes.pdf'), join(b, 'notes.pdf'), join(p.dir, 'copy.pdf')]);
    const ids = acceptedIds(outcomes);
    expect(ids[2]).toBe(ids[0]);
    await p.wait([...new Set(ids)]);
    const names = outcomes.map((o) => o.runs![0]!.name);
    expect(names[0]).toMatch(/^notes-[0-9a-f]{8}$/);
    expect(names[1]).toMatch(/^notes-[0-9a-f]{8}$/);
    expect(names[0]).not.toBe(names[1]);
    expect(parsePages(readFileSync(join(p.config.outDir, `${names[1]}.md`), 'utf8')).size).toBe(3);
  }, 60_000);

  it('a name walked twice does not clash when the other file is not a document or the same bytes', async () => {
    p = await startPipeline({ file: import.meta.filename });
    const { mkdirSync } = await import('node:fs');
    const inbox = join(p.dir, 'inbox');
    const archive = join(p.dir, 'archive');
    mkdirSync(inbox);
    mkdirSync(archive);
    writeFileSync(join(inbox, 'invoice.pdf'), numberedPdf(2));
    writeFileSync(join(inbox, 'invoice.txt'), 'notes about the invoice, not a document to transcribe\n');
    writeFileSync(join(inbox, 'letter.pdf'), numberedPdf(3));
    writeFileSync(join(archive, 'letter.pdf'), numberedPdf(3));
    const outcomes = await p.enqueue([inbox, archive]);
    const names = new Map(outcomes.filter((o) => o.runs).map((o) => [o.file, o.runs![0]!.name]));
    expect(names.get(join(inbox, 'invoice.pdf'))).toBe('invoice');
    expect(names.get(join(inbox, 'letter.pdf'))).toBe('letter');
    expect(names.get(join(archive, 'letter.pdf'))).toBe('letter');
    expect(new Set(acceptedIds(outcomes)).size).toBe(2);
  }, 60_000);
});
