/**
 * An input deleted from the blob store (by hand, or collected) under queued units: each unit fails
 * with BLOB_MISSING and the rest flows; a PDF is written with its pages listed as failed. A chat
 * export's outputs are assembled from its chunks' blob too: its write fails at once, saying what is
 * missing and how to recover (before, the writer tried again for about 17 minutes, --wait waiting
 * all along). Enqueueing the file again stores it again; retry then runs its units and writes it.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { runCli } from '../helpers/cli.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

it('units fail BLOB_MISSING, a chat export fails its write at once saying how to recover, and enqueue again + retry finishes it', async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 50 } });
  const pdf = join(p.dir, 'gone.pdf');
  writeFileSync(pdf, numberedPdf(3));
  const kept = join(p.dir, 'kept.pdf');
  writeFileSync(kept, numberedPdf(2, 9));
  const chat = join(import.meta.dirname, '..', '..', 'samples', 'conversations.json');
  const [pdfId, keptId, chatId] = acceptedIds(await p.enqueue([pdf, kept, chat]));
  for (const id of [pdfId!, chatId!]) {
    const blob = (await p.store.get(id))!.meta.blob;
    rmSync(join(p.config.blobDir, blob.slice(0, 2), blob));
  }
  await p.startWorker();
  const [gone, fine, exported] = await p.wait([pdfId!, keptId!, chatId!], 30_000);
  expect(gone!.record).toMatchObject({ state: 'written', done: 0, failed: 3 });
  for (const page of parsePages(readFileSync(join(p.config.outDir, 'gone.md'), 'utf8')).values()) expect(page.failed).toMatch(/^BLOB_MISSING: /);
  expect(fine!.record).toMatchObject({ state: 'written', done: 2, failed: 0 });
  expect(exported!.record).toMatchObject({ state: 'failed', writeError: { code: 'WRITE_FAILED', message: expect.stringMatching(/^BLOB_MISSING: .*deleted or collected.*enqueue the file again .*then docbatch retry d/) } });

  // Enqueued again: its blob is stored again and it is written, its units failed as they were...
  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir };
  const again = await runCli(['enqueue', chat, '--wait'], env, { timeoutMs: 60_000 });
  expect(again.code, again.stdout + again.stderr).toBe(1);
  const before = readFileSync(join(p.config.outDir, 'conversations.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { error?: { code: string } });
  expect(before.every((l) => l.error?.code === 'BLOB_MISSING')).toBe(true);
  // ... and retry runs them.
  const retry = await runCli(['retry', chatId!, '--wait'], env, { timeoutMs: 60_000 });
  expect(retry.code, retry.stdout + retry.stderr).toBe(0);
  const lines = readFileSync(join(p.config.outDir, 'conversations.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { error?: unknown; summary?: string });
  expect(lines.length).toBe(exported!.record.units);
  expect(lines.every((l) => l.error === undefined && typeof l.summary === 'string')).toBe(true);
}, 120_000);
