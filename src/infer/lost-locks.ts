/**
 * Units whose locks expired (Redis away longer than LOCK_DURATION_MS, or the event loop stalled):
 * their requests are aborted and BullMQ's stalled check gives them back to the queue. BullMQ
 * reports each such unit two or three times; after an outage that is every unit in flight at
 * once. Said in one warning for each 2 s with losses (the first 2 s after the first loss, however
 * long losses go on), with how many units; what is pending is said by `say()` on close.
 */
import type { Logger } from '../observe/log.ts';

/** BullMQ's own reports of a unit whose lock is gone (the job id in group 1). */
const LOST_LOCK = /^(?:could not renew lock for job|Missing lock for job) (\S+?)\.?(?: |$)/;

/** BullMQ's report of a unit whose job is no longer in Redis at all (the job id in group 1). */
const GONE_JOB = /^Missing key for job (\S+?)\.?(?: |$)/;

/** The job id of a BullMQ error that reports a lost lock, or undefined. */
export function lostLockJob(message: string): string | undefined {
  return LOST_LOCK.exec(message)?.[1];
}

/** The job id of a BullMQ error that reports a unit's job gone from Redis, or undefined. */
export function goneJob(message: string): string | undefined {
  return GONE_JOB.exec(message)?.[1];
}

/** What the warning says of `n` units (LostLocks' own words by default). */
export type LossWords = (n: number) => string;

const lockWords: LossWords = (n) =>
  `lost the lock of ${n} unit${n === 1 ? '' : 's'} (Redis away longer than LOCK_DURATION_MS, or this process stalled): requests in flight aborted, answers already back recorded where no result is; the stalled check returns them to the queue`;

/**
 * Units whose jobs vanished from Redis while this worker held them: removed by hand, or Redis
 * lost its data (restarted without persistence, flushed). BullMQ reports each as a queue error
 * ("Missing key for job"); after such a restart that was one error line per unit in flight.
 * Said in one warning for them all, with what to do.
 */
export const goneWords: LossWords = (n) =>
  `the jobs of ${n} unit${n === 1 ? '' : 's'} in flight are gone from Redis (removed by hand, or Redis lost its data: restarted without persistence, or flushed). If Redis lost its data, \`docbatch status\` no longer lists their documents: enqueue the same files again to redo them`;

export class LostLocks {
  private readonly log: Logger;
  private readonly words: LossWords;
  private readonly jobs = new Set<string>();
  private timer: NodeJS.Timeout | null = null;

  constructor(log: Logger, words: LossWords = lockWords) {
    this.log = log;
    this.words = words;
  }

  note(jobId: string, detail?: string): void {
    if (detail) this.log.debug({ job: jobId, err: detail }, 'lost lock reported');
    this.jobs.add(jobId);
    if (this.timer) return;
    this.timer = setTimeout(() => this.say(), 2000);
    this.timer.unref();
  }

  /** Says the losses not said yet (if any). */
  say(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const jobs = [...this.jobs];
    this.jobs.clear();
    if (jobs.length === 0) return;
    this.log.warn({ code: 'ABORTED', units: jobs.length, jobs: jobs.slice(0, 5) }, this.words(jobs.length));
  }
}
