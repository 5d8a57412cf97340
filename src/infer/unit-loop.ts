/**
 * The worker's queue wiring: which infer queues it serves, and one BullMQ worker (a unit loop) on
 * each, all handing their units to the worker's `run`. A unit whose lock could not be renewed is
 * noted (lost-locks.ts) and its request aborted; BullMQ's errors are sorted: Redis full (intake
 * stops), a lost lock, a job gone (said in bursts), anything else logged.
 */
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { openWorker, type TypedProcessor, type TypedWorker } from '../../queues/connect.ts';
import { MAX_STALLED_COUNT, type UnitJobData } from '../../queues/contracts.ts';
import { isRedisFull, type RedisLink } from '../../queues/redis-link.ts';
import { inferQueueFor, SHARED_INFER_QUEUE } from '../../queues/routes.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../observe/log.ts';
import type { EngineFacts } from './environment.ts';
import { goneJob, lostLockJob, type LostLocks } from './lost-locks.ts';

/** The queues a worker takes units from: the shared one (unless text-only) and one per served model. */
export function servedQueues(facts: EngineFacts | null, configured: string | undefined): string[] {
  const names = new Set<string>();
  if (facts?.acceptsImages !== false) names.add(SHARED_INFER_QUEUE);
  const models = configured ? [configured] : (facts?.served ?? []).map((m) => m.id);
  for (const model of models) names.add(inferQueueFor(model));
  return [...names];
}

export interface UnitLoopWiring {
  config: Config;
  bullRedis: Redis;
  link: RedisLink;
  log: Logger;
  /** Units the loop keeps active. */
  concurrency: number;
  run: TypedProcessor<'infer'>;
  lostLocks: LostLocks;
  goneJobs: LostLocks;
  onRedisFull: (err: Error) => void;
  /** BullMQ failed a unit (by the processor's throw, or by itself: stalled too often). */
  onFailed: (job: Job<UnitJobData> | undefined, err: Error) => void;
}

/** Opens the unit loop of `queue`, not running yet (`autorun: false`). */
export function openUnitLoop(queue: string, w: UnitLoopWiring): TypedWorker<'infer'> {
  const { config } = w;
  const bull = openWorker(
    'infer',
    w.run,
    config,
    w.bullRedis,
    {
      name: config.workerName,
      autorun: false,
      concurrency: w.concurrency,
      lockDuration: config.lockDurationMs,
      stalledInterval: config.stalledIntervalMs,
      maxStalledCount: MAX_STALLED_COUNT,
      link: w.link,
    },
    queue,
  );
  bull.on('lockRenewalFailed', (ids) => {
    for (const id of ids) {
      w.lostLocks.note(id);
      bull.cancelJob(id, 'lock lost');
    }
  });
  bull.on('failed', (job, err) => w.onFailed(job, err));
  bull.on('error', (err) => {
    const lost = lostLockJob(err.message);
    const gone = lost ? undefined : goneJob(err.message);
    if (isRedisFull(err)) w.onRedisFull(err);
    else if (lost) w.lostLocks.note(lost, err.message);
    else if (gone) w.goneJobs.note(gone, err.message);
    else w.log.error({ err: err.message, queue }, 'queue error (retrying)');
  });
  return bull;
}
