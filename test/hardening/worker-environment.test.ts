/**
 * Issue 8, item 3: one misconfigured worker must not fail the queue. A worker checks at start
 * what it needs and refuses with WORKER_UNFIT; a fault of its own environment at run time hands
 * the unit back (no attempt used), stops its intake and marks it unhealthy, while a good worker
 * beside it does every unit exactly once.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
let other: Emulator | undefined;
afterEach(async () => {
  await p?.stop();
  await other?.close();
  p = undefined;
  other = undefined;
});

describe('checks at start', () => {
  it('refuses a BLOB_DIR that is not there, a MODEL the engine does not serve, and a model that takes no images', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false });
    await expect(p.startWorker({ blobDir: join(p.dir, 'not-mounted') })).rejects.toMatchObject({ code: 'WORKER_UNFIT', message: expect.stringMatching(/^blobs: BLOB_DIR .*not-mounted does not exist/) });
    await expect(p.startWorker({ model: 'someone/else' })).rejects.toMatchObject({ code: 'WORKER_UNFIT', message: expect.stringMatching(/^model: MODEL "someone\/else" is not served by the engine \(it serves "docbatch\/emulated-vl"\)/) });

    other = await startEmulator({ model: 'text/only-7b', acceptsImages: false });
    await expect(p.startWorker({ engineUrl: other.url })).rejects.toMatchObject({ code: 'WORKER_UNFIT', message: expect.stringMatching(/^images: the model "text\/only-7b" takes no images/) });
    // Told it is text-only, it starts, and takes only work queued for its model by name.
    const textOnly = await p.startWorker({ engineUrl: other.url, textOnly: true });
    expect(textOnly.queueNames()).toEqual([expect.stringMatching(/^infer-text-only-7b-[0-9a-f]{6}$/)]);
  }, 60_000);
});

describe('a bad worker beside a good one', () => {
  it('a worker whose blob store is empty hands every unit back and stops; the good one does each page once, none fails', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 5 } });
    // The bad worker's BLOB_DIR exists but is not the producers' store (a mount that failed).
    const wrong = join(p.dir, 'empty-mount');
    mkdirSync(wrong);
    const bad = await p.startWorker({ blobDir: wrong, workerName: 'bad' });
    const pdf = join(p.dir, 'thirty.pdf');
    writeFileSync(pdf, numberedPdf(30));
    const ids = acceptedIds(await p.enqueue([pdf]));
    for (let i = 0; i < 400 && bad.unhealthy === null; i++) await new Promise((r) => setTimeout(r, 25));
    expect(bad.unhealthy?.code).toBe('BLOB_STORE_UNAVAILABLE');
    expect(bad.pauseReasons).toContain('environment');

    const good = await p.startWorker({ workerName: 'good' });
    const [done] = await p.wait(ids, 90_000);
    expect(done!.record).toMatchObject({ done: 30, failed: 0, state: 'written' });
    const pages = parsePages(readFileSync(join(p.config.outDir, 'thirty.md'), 'utf8'));
    expect([...pages.values()].filter((pg) => pg.failed)).toEqual([]);
    // Each page reached the engine once (plus one image probe per worker start).
    expect(p.engine.stats().completed).toBe(30 + 2);
    expect(good.unhealthy).toBeNull();
    // The bad worker's health says why it takes nothing.
    const beat = JSON.parse((await p.redis.hget(`${p.config.prefix}:workers`, 'bad'))!) as { unhealthy: { code: string } | null };
    expect(beat.unhealthy?.code).toBe('BLOB_STORE_UNAVAILABLE');
  }, 120_000);
});
