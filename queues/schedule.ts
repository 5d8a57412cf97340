import { writeJobId } from './contracts.ts';
import type { TypedQueue } from './connect.ts';

/**
 * Makes sure document `docId` (generation `gen`), whose units have all settled, has a `write` job
 * that will run. The job id is `{docId}.{gen}`: BullMQ ignores a second add while the job exists,
 * so adding is idempotent. A job of that id that already finished (completed or failed) wrote
 * the document before some of its units were reopened (`docbatch retry`, Bull Board's Retry of a
 * unit) or before its outputs were lost: it is run again, since adding would be ignored and the
 * document would stay `complete` for ever. A job still running is left alone: a write during
 * which units were reopened is not marked written, and writes again itself if they settled
 * meanwhile (src/write/writer.ts); the reconciler schedules what lands as it finishes.
 */
export async function ensureWriteJob(queue: TypedQueue<'write'>, docId: string, gen: number): Promise<void> {
  const jobId = writeJobId(docId, gen);
  const job = await queue.getJob(jobId);
  if (job) {
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') {
      try {
        await job.retry(state);
        return;
      } catch {
        // Another caller retried it first (it is waiting again), or it was removed: add below.
      }
    }
  }
  await queue.add('document', { docId, gen }, { jobId });
}
