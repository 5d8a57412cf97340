/**
 * A file that changes while it is enqueued (still being written, or replaced by a sync tool):
 * what was inspected must be what is stored. It was not: a 3-page PDF replaced by a 1-page one
 * after inspection was registered as 3 units over the 1-page blob, and the real file was then
 * refused as a conflict. Now it is rejected with FILE_CHANGED, nothing enqueued, and goes in
 * once it is still. The writer is simulated at the exact moment: the inspector (a real one)
 * replaces the file right after reading it.
 *
 * Also: a file whose runs (one per model) are not all accepted says which went in beside the
 * refusal (it said only the refusal, while a run was registered and running).
 */
import { writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { PdfInspector } from '../../src/ingest/pdf.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline;
beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false });
});
afterAll(async () => {
  await p?.stop();
});

/** A real inspector that, once it has read the file, lets `change` rewrite it (a concurrent writer). */
class RacingInspector extends PdfInspector {
  readonly #change: (path: string) => void;
  constructor(change: (path: string) => void) {
    super();
    this.#change = change;
  }
  override async inspect(...args: Parameters<PdfInspector['inspect']>): ReturnType<PdfInspector['inspect']> {
    try {
      return await super.inspect(...args);
    } finally {
      this.#change(args[0]);
    }
  }
}

describe('a file that changes while it is enqueued', () => {
  it('is rejected with FILE_CHANGED and nothing enqueued; enqueued again once still, it goes in whole', async () => {
    const file = join(p.dir, 'growing.pdf');
    writeFileSync(file, numberedPdf(3, 1));
    const inspector = new RacingInspector((path) => writeFileSync(path, numberedPdf(1, 2)));
    try {
      const [outcome] = await p.enqueue([file], { inspector });
      expect(outcome!.error).toMatchObject({ code: 'FILE_CHANGED', place: { file } });
      expect(outcome!.runs).toBeUndefined();
      expect(await p.store.list()).toEqual([]);
    } finally {
      await inspector.close();
    }
    // The file as it is now (1 page) goes in as itself.
    const [again] = await p.enqueue([file]);
    const [docId] = acceptedIds([again!]);
    expect((await p.store.get(docId!))!.units).toBe(1);
  });

  it('a PDF still being written (cut short when read) is FILE_CHANGED, not PDF_CORRUPT', async () => {
    const file = join(p.dir, 'copying.pdf');
    const whole = numberedPdf(4, 3);
    writeFileSync(file, whole.subarray(0, 200));
    const inspector = new RacingInspector((path) => writeFileSync(path, whole));
    try {
      const [outcome] = await p.enqueue([file], { inspector });
      expect(outcome!.error?.code).toBe('FILE_CHANGED');
    } finally {
      await inspector.close();
    }
  });

  it('a chat export that changes while it is split is rejected the same way, its sidecar removed', async () => {
    const file = join(p.dir, 'chats.jsonl');
    const line = (i: number) => `${JSON.stringify({ id: `c${i}`, messages: [{ role: 'user', content: `Question ${i}?` }, { role: 'assistant', content: `Answer ${i}.` }] })}\n`;
    writeFileSync(file, line(1));
    // Appended to between its hash and its split: the race without a hook, made likely by size.
    writeFileSync(file, Array.from({ length: 20_000 }, (_, i) => line(i)).join(''));
    const appending = setInterval(() => writeFileSync(file, line(99), { flag: 'a' }), 1);
    let outcome;
    try {
      [outcome] = await p.enqueue([file]);
    } finally {
      clearInterval(appending);
    }
    expect(outcome!.error?.code).toBe('FILE_CHANGED');
    const files = (await readdir(p.config.blobDir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => relative(p.config.blobDir, join(e.parentPath, e.name)));
    expect(files.filter((f) => f.startsWith('tmp'))).toEqual([]);
  });
});

describe('a file with several runs (one per model), one of them refused', () => {
  it('says which runs went in beside the refusal, instead of only the refusal', async () => {
    const file = join(p.dir, 'two-models.pdf');
    writeFileSync(file, numberedPdf(2, 9));
    const first = await p.enqueue([file], { task: { models: ['a', 'b'] } });
    const b = first[0]!.runs!.find((r) => r.model === 'b')!;
    // Model b's record disagrees with the file now (as a record left by a file replaced under an
    // older docbatch would): its run is refused as a conflict; a's is not.
    await p.store.redis.hset(p.store.docKey(b.docId), 'units', 5);
    const [outcome] = await p.enqueue([file], { task: { models: ['a', 'b'] } });
    expect(outcome!.error?.code).toBe('DOC_CONFLICT');
    expect(outcome!.runs?.map((r) => [r.model, r.outcome])).toEqual([['a', 'resumed']]);
  });
});
