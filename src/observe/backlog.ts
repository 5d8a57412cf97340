/**
 * How much work waits for GPU workers, for autoscalers (the dashboard's `/api/backlog`, which
 * KEDA's metrics-api trigger reads: deploy/kubernetes/base/keda.yaml) and for operators (the
 * `docbatch_queue_units_unfed` gauge).
 *
 * BullMQ's wait list of an infer queue holds only about FEED_DEPTH jobs: the rest of the units
 * wait in the fair feeding round (src/store/feed.ts). An autoscaler that reads the wait list
 * alone sees at most FEED_DEPTH units however many are queued, so it never adds a pod past
 * FEED_DEPTH / target. What waits is the wait list plus the units not yet fed.
 */
import type { Redis } from 'ioredis';
import { Gauge, type Registry } from 'prom-client';
import { inferQueueFor, SHARED_INFER_QUEUE } from '../../queues/routes.ts';
import type { Feeder, QueueBacklog } from '../store/feed.ts';
import { withDeadline } from '../timeouts.ts';
import { METRIC_PREFIX } from './metrics.ts';

/** What the dashboard answers at `/api/backlog`. */
export interface BacklogReport {
  /** The model asked about (`?model=`), else null. */
  model: string | null;
  /** Units waiting for a worker in these queues: jobs in their wait lists plus units not yet fed. */
  waiting: number;
  /** Some queue stopped counting at the cap: `waiting` is a lower bound. */
  capped: boolean;
  queues: Array<{ queue: string; waiting: number } & QueueBacklog>;
}

/** Who asks: `?model=NAME` (the shared queue and that model's), `?queue=NAME`, or neither (every infer queue). */
export interface BacklogQuery {
  model?: string | undefined;
  queue?: string | undefined;
}

const QUEUE_NAME = /^infer(-[a-z0-9.-]{1,80})?$/;

/** Why a query cannot be answered (the dashboard answers 400 with it), else null. */
export function backlogQueryProblem(query: BacklogQuery): string | null {
  if (query.model !== undefined && query.queue !== undefined) return 'ask for a model or a queue, not both';
  if (query.model !== undefined && (query.model === '' || query.model.length > 512)) return 'model must be a model name (1 to 512 characters)';
  if (query.queue !== undefined && !QUEUE_NAME.test(query.queue)) return 'queue is not an infer queue name (infer, or infer-<model slug>-<hash>)';
  return null;
}

/** The infer queues a (valid) query covers. */
export async function backlogQueues(query: BacklogQuery, redis: Redis, prefix: string): Promise<string[]> {
  if (query.model !== undefined) return [...new Set([SHARED_INFER_QUEUE, inferQueueFor(query.model)])];
  if (query.queue !== undefined) return [query.queue];
  const named = await redis.smembers(`${prefix}:queues`);
  return [...new Set([SHARED_INFER_QUEUE, ...named.filter((q) => QUEUE_NAME.test(q)).sort()])];
}

/** Reads the backlog of every queue a query covers. */
export async function readBacklog(query: BacklogQuery, feeder: Feeder, redis: Redis, prefix: string): Promise<BacklogReport> {
  const queues = await Promise.all(
    (await backlogQueues(query, redis, prefix)).map(async (queue) => {
      const b = await feeder.backlog(queue);
      return { queue, waiting: b.jobs + b.unfed, ...b };
    }),
  );
  return {
    model: query.model ?? null,
    waiting: queues.reduce((n, q) => n + q.waiting, 0),
    capped: queues.some((q) => q.capped),
    queues,
  };
}

/**
 * Registers `docbatch_queue_units_unfed{queue}`: units of each infer queue not yet made BullMQ
 * jobs. `docbatch_queue_jobs{state="waiting"}` plus this is what waits for a worker.
 */
export function registerBacklogMetrics(registry: Registry, feeder: Feeder, queues: () => string[], timeoutMs = 2000): void {
  new Gauge({
    name: `${METRIC_PREFIX}queue_units_unfed`,
    help: 'Units of documents waiting in the fair feeding round of each infer queue, not yet BullMQ jobs (read from Redis when scraped).',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      this.reset();
      const counts = await withDeadline(Promise.all(queues().map(async (q) => [q, (await feeder.backlog(q)).unfed] as const)), timeoutMs).catch(() => null);
      for (const [queue, unfed] of counts ?? []) this.set({ queue }, unfed);
    },
  });
}
