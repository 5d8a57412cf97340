/**
 * Documents whose write failed and waits to be tried again (the write job's backoff: WRITE_ATTEMPTS
 * tries over about 17 minutes, before the document is marked failed with WRITE_FAILED). Until
 * then the document has every unit answered and is not written: without this, `docbatch status`
 * showed it as if it were only slow, and said nothing of a full disk or a refused folder.
 *
 * Read from the document's write job (`{docId}.{gen}`) in BullMQ: a job `delayed` with a
 * `failedReason` is between a failed attempt and the next (write jobs are added with no delay).
 */
import { writeJobId } from '../../queues/contracts.ts';
import type { TypedQueue } from '../../queues/connect.ts';
import { printable } from '../printable.ts';
import type { DocProgress } from './progress.ts';

export interface WriteRetrying {
  code: string;
  message: string;
  /** Attempts made so far, and how many the job has. */
  attemptsMade: number;
  attempts: number;
}

/** The documents among `progress` whose write is being tried again, by id. */
export async function readWriteRetries(queue: TypedQueue<'write'>, progress: readonly DocProgress[]): Promise<Map<string, WriteRetrying>> {
  const out = new Map<string, WriteRetrying>();
  for (const p of progress) {
    const r = p.record;
    if (p.finished || r.state !== 'complete') continue;
    const job = await queue.getJob(writeJobId(r.docId, r.gen));
    if (!job?.failedReason || job.attemptsMade === 0 || (await job.getState()) !== 'delayed') continue;
    // The writer throws "CODE: message" (DocbatchError) or a bare message (WRITE_FAILED then).
    const m = /^([A-Z][A-Z0-9_]+): ([\s\S]*)$/.exec(job.failedReason);
    out.set(r.docId, { code: m?.[1] ?? 'WRITE_FAILED', message: m?.[2] ?? job.failedReason, attemptsMade: job.attemptsMade, attempts: job.opts.attempts ?? 1 });
  }
  return out;
}

/** The line `status` and `--wait` print for a document whose write is being tried again. */
export function writeFailingLine(docId: string, w: WriteRetrying): string {
  return `${docId}  write failing: ${w.code}: ${printable(w.message)} (attempt ${w.attemptsMade} of ${w.attempts}; tried again)`;
}
