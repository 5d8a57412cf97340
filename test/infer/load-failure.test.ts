/**
 * Review finding 7: a unit whose document cannot be loaded in the worker (here its task's blob is
 * gone from a blob store that otherwise answers) fails with the real code, BLOB_MISSING, settled
 * by the worker on the first attempt: not retried through every attempt, and not left for the
 * reconciler to settle as INTERNAL from a BullMQ reason that lost the code.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { openQueue } from '../../queues/connect.ts';
import { unitJobId } from '../../queues/contracts.ts';
import { openBlobStore } from '../../src/store/storage.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

it("a unit whose task's blob is missing fails with BLOB_MISSING at once, settled by the worker; the document is written", async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false });
  const path = join(p.dir, 'chats.jsonl');
  writeFileSync(path, `${[0, 1, 2].map((i) => JSON.stringify({ id: `c${i}`, title: `T${i}`, messages: [{ role: 'user', content: `Question ${i}?` }, { role: 'assistant', content: `Answer ${i}.` }] })).join('\n')}\n`);
  const [docId] = acceptedIds(await p.enqueue([path]));
  const record = await p.store.get(docId!);
  await openBlobStore(p.config).deleteBlob(record!.meta.task.blob);

  await p.startWorker({ attempts: 3 });
  const [done] = await p.wait([docId!], 60_000);
  expect(done!.record).toMatchObject({ state: 'written', done: 0, failed: 3 });
  const lines = readFileSync(join(p.config.outDir, 'chats.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { error?: { code: string; message: string } });
  expect(lines.map((l) => l.error?.code)).toEqual(['BLOB_MISSING', 'BLOB_MISSING', 'BLOB_MISSING']);
  expect(lines[0]!.error!.message).toMatch(/blob .* is not in/);

  // Failed for good on the first attempt, the code kept in BullMQ's reason.
  const queue = openQueue('infer', p.config, p.redis);
  try {
    for (const unit of [0, 1, 2]) {
      const job = await queue.getJob(unitJobId(docId!, record!.gen, unit));
      expect(job?.attemptsMade).toBe(1);
      expect(job?.failedReason).toMatch(/^BLOB_MISSING: /);
    }
  } finally {
    await queue.close();
  }
}, 90_000);
