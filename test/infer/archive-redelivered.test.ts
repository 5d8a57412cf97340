/**
 * A unit of a written document delivered again (Bull Board's Retry of a finished job, a job
 * added by hand) is looked up in the document's results archive, not sent to the engine. When
 * that archive is damaged, the job fails with the archive's stable code and place in its
 * reason (`ARCHIVE_CORRUPT: ...`, what Bull Board and the reconciler read): it failed with the
 * bare message, no code, and used every attempt.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openQueue } from '../../queues/connect.ts';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline;
beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, config: { attempts: 3 } });
}, 60_000);
afterAll(async () => {
  await p?.stop();
});

it('a unit of a written document whose archive is damaged fails with ARCHIVE_CORRUPT, once, not sent to the engine', async () => {
  const pdf = join(p.dir, 'again.pdf');
  writeFileSync(pdf, numberedPdf(2));
  const [docId] = acceptedIds(await p.enqueue([pdf]));
  const [done] = await p.wait([docId!]);
  expect(done!.record.state).toBe('written');
  const folder = join(p.config.blobDir, 'named', 'results', docId!);
  const archive = join(folder, readdirSync(folder)[0]!);
  writeFileSync(archive, readFileSync(archive, 'utf8').replace(/^\[0,/, '[0,{'));
  const sent = p.engine.stats().completed;

  const queue = openQueue('infer', p.config, p.redis);
  try {
    const job = await queue.add('page', { docId: docId!, gen: done!.record.gen, unit: 0 }, { jobId: 'again-by-hand' });
    let state = '';
    for (let i = 0; i < 200 && state !== 'failed' && state !== 'completed'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      state = await job.getState();
    }
    const failed = (await queue.getJob('again-by-hand'))!;
    expect(state).toBe('failed');
    expect(failed.failedReason).toMatch(new RegExp(`^ARCHIVE_CORRUPT: the results archive is damaged`));
    expect(failed.attemptsMade).toBe(1);
  } finally {
    await queue.close();
  }
  expect(p.engine.stats().completed).toBe(sent);
  expect((await p.store.get(docId!))!.state).toBe('written');
}, 60_000);
