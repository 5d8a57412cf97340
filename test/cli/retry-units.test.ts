/**
 * `docbatch retry` of a written document's failed units runs them again and writes the document
 * anew. A page the engine refuses (BAD_REQUEST, failed for good) is retried once the engine takes
 * it: the page is answered, the others are not sent again, the outputs are rewritten. (Before,
 * the units' failed jobs still existed in BullMQ, so feeding them again added nothing, the
 * reconciler settled them again from the old jobs' reasons, and the finished write job kept the
 * document from being written again: it stayed `complete`.) Bull Board's Retry of the failed
 * job (BullMQ's job.retry) does the same for one unit.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openQueue } from '../../queues/connect.ts';
import { unitJobId } from '../../queues/contracts.ts';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { runCli } from '../helpers/cli.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline;

beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, emulator: { reject: { matchText: 'Page 2 of 4' } } });
}, 60_000);

afterAll(async () => {
  await p?.stop();
});

it('runs the failed units again and writes the document anew', async () => {
  const pdf = join(p.dir, 'refused-page.pdf');
  writeFileSync(pdf, numberedPdf(4));
  const [docId] = acceptedIds(await p.enqueue([pdf]));
  const [first] = await p.wait([docId!]);
  expect(first!.record).toMatchObject({ state: 'written', done: 3, failed: 1 });
  const sent = p.engine.stats().completed;

  p.engine.setFaults({ reject: null });
  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir };
  const r = await runCli(['retry', pdf, '--wait'], env, { timeoutMs: 60_000 });
  expect(r.stdout).toMatch(new RegExp(`${docId}  retrying 1 unit`));
  expect(r.code, r.stdout + r.stderr).toBe(0);
  // Where the rewritten outputs are, as enqueue --wait says it (it said only "4/4 done").
  expect(r.stdout).toMatch(new RegExp(`^${docId}  written  .*refused-page\\.pdf: 4/4 done → .*refused-page\\.md`, 'm'));
  const after = (await p.store.get(docId!))!;
  expect(after).toMatchObject({ state: 'written', done: 4, failed: 0 });
  expect(after.writtenAt).not.toBe(first!.record.writtenAt);
  const pages = parsePages(readFileSync(join(p.config.outDir, 'refused-page.md'), 'utf8'));
  expect(pages.get(2)).toMatchObject({ failed: null });
  // Only the failed page went to the engine again.
  expect(p.engine.stats().completed).toBe(sent + 1);
}, 120_000);

it("Bull Board's Retry of a written document's failed unit runs it and writes the document again", async () => {
  p.engine.setFaults({ reject: { matchText: 'Page 3 of 3' } });
  const pdf = join(p.dir, 'by-hand.pdf');
  writeFileSync(pdf, numberedPdf(3));
  const [docId] = acceptedIds(await p.enqueue([pdf]));
  const [first] = await p.wait([docId!]);
  expect(first!.record).toMatchObject({ state: 'written', done: 2, failed: 1 });
  p.engine.setFaults({ reject: null });
  const queue = openQueue('infer', p.config, p.redis);
  try {
    const job = (await queue.getJob(unitJobId(docId!, first!.record.gen, 2)))!;
    expect(await job.getState()).toBe('failed');
    await job.retry('failed');
  } finally {
    await queue.close();
  }
  const deadline = Date.now() + 60_000;
  let after = (await p.store.get(docId!))!;
  while (!(after.state === 'written' && after.writtenAt !== first!.record.writtenAt) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    after = (await p.store.get(docId!))!;
  }
  expect(after).toMatchObject({ state: 'written', done: 3, failed: 0 });
  expect(parsePages(readFileSync(join(p.config.outDir, 'by-hand.md'), 'utf8')).get(3)).toMatchObject({ failed: null });
}, 90_000);
