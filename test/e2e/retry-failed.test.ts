/**
 * Retry what failed (issue 9): when the engine rejects some pages of a 95-page PDF, the document
 * is written with those pages failed; once the engine is fixed, `docbatch retry FILE --wait`
 * (the real CLI) sends exactly those pages again and the document is whole, the other pages'
 * text unchanged. Bull Board's Retry on a failed unit (`job.retry('failed')`, as the board
 * calls it) runs that unit again and rewrites its document.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openQueue } from '../../queues/connect.ts';
import { SHARED_INFER_QUEUE } from '../../queues/routes.ts';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { runCli } from '../helpers/cli.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

describe('retrying failed units', () => {
  let p: Pipeline;
  let env: Record<string, string>;
  beforeAll(async () => {
    p = await startPipeline({ file: import.meta.filename, config: { imageSize: 384, pageMaxTokens: 200 } });
    env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, LOG_FORMAT: 'json' };
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('docbatch retry FILE --wait sends exactly the rejected pages of a 95-page PDF again', async () => {
    const rejected = [7, 33, 58, 90];
    p.engine.setFaults({ reject: { matchText: rejected.map((n) => `Page ${n} of 95`) } });
    const file = join(p.dir, 'long.pdf');
    writeFileSync(file, numberedPdf(95, 20));
    const [docId] = acceptedIds(await p.enqueue([file]));
    const [first] = await p.wait([docId!], 240_000);
    expect(first!.record).toMatchObject({ state: 'written', done: 91, failed: 4 });
    const before = parsePages(readFileSync(join(p.config.outDir, 'long.md'), 'utf8'));
    expect([...before].filter(([, page]) => page.failed).map(([n]) => n)).toEqual(rejected);
    for (const n of rejected) expect(before.get(n)!.failed).toMatch(/^BAD_REQUEST: /);
    const report = JSON.parse(readFileSync(join(p.config.outDir, 'long.report.json'), 'utf8')) as Record<string, unknown>;
    expect(report).toMatchObject({ completed: 91, failures_by_code: { BAD_REQUEST: 4 } });

    // The engine is fixed; only the four pages go to it again.
    p.engine.setFaults({ reject: null });
    const sent = p.engine.stats().requests;
    const r = await runCli(['retry', file, '--wait'], env, { timeoutMs: 120_000 });
    expect(r.stderr).not.toContain('docbatch:'); // progress lines only
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${docId}  retrying 4 units`);
    expect(r.stdout).toMatch(new RegExp(`${docId}  written  .*95/95 done → .*long\\.md`));
    expect(p.engine.stats().requests - sent).toBe(4);

    const after = parsePages(readFileSync(join(p.config.outDir, 'long.md'), 'utf8'));
    expect(after.size).toBe(95);
    for (const [n, page] of after) {
      expect(page.failed, `page ${n}`).toBeNull();
      if (rejected.includes(n)) expect(page.body).toContain(`first="Page ${n} of 95`);
      else expect(page.body, `page ${n}`).toBe(before.get(n)!.body);
    }
    const again = JSON.parse(readFileSync(join(p.config.outDir, 'long.report.json'), 'utf8')) as Record<string, unknown>;
    expect(again).toMatchObject({ completed: 95, failed: [], failures_by_code: {} });
  }, 300_000);

  it('retry prints file names escaped: a name with an escape sequence cannot drive the terminal', async () => {
    p.engine.setFaults({ reject: { matchText: 'Page 1 of 1' } });
    const file = join(p.dir, 'evil\u001b[2Jname.pdf');
    writeFileSync(file, numberedPdf(1, 6));
    const [docId] = acceptedIds(await p.enqueue([file]));
    await p.wait([docId!], 60_000);
    p.engine.setFaults({ reject: null });
    const r = await runCli(['retry', file, '--wait'], env, { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('\u001b');
    expect(r.stdout).toContain(`${docId}  retrying 1 unit  ${join(p.dir, 'evil\\x1b[2Jname.pdf')}\n`);
    expect(r.stdout).toContain(`${docId}  written  ${join(p.dir, 'evil\\x1b[2Jname.pdf')}: 1/1 done → `);
  }, 90_000);

  it("Bull Board's Retry on a failed unit runs it again and rewrites the document", async () => {
    p.engine.setFaults({ reject: { matchText: 'Page 2 of 3' } });
    const file = join(p.dir, 'short.pdf');
    writeFileSync(file, numberedPdf(3, 12));
    const [docId] = acceptedIds(await p.enqueue([file]));
    const [first] = await p.wait([docId!], 60_000);
    expect(first!.record).toMatchObject({ state: 'written', done: 2, failed: 1 });
    expect(parsePages(readFileSync(join(p.config.outDir, 'short.md'), 'utf8')).get(2)!.failed).toMatch(/^BAD_REQUEST: /);

    p.engine.setFaults({ reject: null });
    const queue = openQueue('infer', p.config, p.redis, SHARED_INFER_QUEUE);
    try {
      const failed = (await queue.getFailed()).filter((j) => j.data.docId === docId);
      expect(failed.map((j) => j.data.unit)).toEqual([1]);
      await failed[0]!.retry('failed');

      // The record goes back to work and is written again, whole.
      const deadline = Date.now() + 60_000;
      for (;;) {
        const record = await p.store.get(docId!);
        if (record?.state === 'written' && record.failed === 0) {
          expect(record.done).toBe(3);
          break;
        }
        if (Date.now() > deadline) throw new Error(`not rewritten: ${JSON.stringify({ state: record?.state, done: record?.done, failed: record?.failed })}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const job = await queue.getJob(failed[0]!.id!);
      expect(await job?.getState()).toBe('completed');
    } finally {
      await queue.close();
    }
    const pages = parsePages(readFileSync(join(p.config.outDir, 'short.md'), 'utf8'));
    expect([...pages.values()].map((page) => page.failed)).toEqual([null, null, null]);
    expect(pages.get(2)!.body).toContain('first="Page 2 of 3');
  }, 120_000);
});
