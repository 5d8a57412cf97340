import { writeJobId } from './contracts.ts';
import type { TypedQueue } from './connect.ts';

/**
 * Makes sure document `docId` (generation `gen`) has a `write` job. Adding is idempotent: the job
 * id is `{docId}.{gen}` and BullMQ ignores a second add while the job exists. With `rerun`, a job
 * that already finished (outputs since deleted) is run again.
 */
export async function ensureWriteJob(queue: TypedQueue<'write'>, docId: string, gen: number, options: { rerun: boolean }): Promise<void> {
  const jobId = writeJobId(docId, gen);
  if (options.rerun) {
    const job = await queue.getJob(jobId);
    if (job) {
      const state = await job.getState();
      if (state === 'completed' || state === 'failed') {
        await job.retry(state);
        return;
      }
    }
  }
  await queue.add('document', { docId, gen }, { jobId });
}
