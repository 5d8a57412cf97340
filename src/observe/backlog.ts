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
import { inferQueueFor, isInferQueueName, SHARED_INFER_QUEUE } from '../../queues/routes.ts';
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

/** Why a query cannot be answered (the dashboard answers 400 with it), else null. */
export function backlogQueryProblem(query: BacklogQuery): string | null {
  if (query.model !== undefined && query.queue !== undefined) return 'ask for a model or a queue, not both';
  if (query.model !== undefined && (query.model === '' || query.model.length > 512)) return 'model must be a model name (1 to 512 characters)';
  if (query.queue !== undefined && !isInferQueueName(query.queue)) return 'queue is not an infer queue name (infer, or infer-<model slug>-<hash>)';
  return null;
}

/** The infer queues a (valid) query covers. */
export async function backlogQueues(query: BacklogQuery, redis: Redis, prefix: string): Promise<string[]> {
  if (query.model !== undefined) return [...new Set([SHARED_INFER_QUEUE, inferQueueFor(query.model)])];
  if (query.queue !== undefined) return [query.queue];
  const named = await redis.smembers(`${prefix}:queues`);
  return [...new Set([SHARED_INFER_QUEUE, ...named.filter(isInferQueueName).sort()])];
}

/**
 * Reads backlogs for the dashboard. One count serves every caller for `ttlMs` (KEDA's operator,
 * its metrics server and Prometheus scrapes all ask): a large backlog is counted once per
 * interval, never once per request, and concurrent requests share the count under way.
 */
export class BacklogReader {
  readonly #feeder: Feeder;
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #memo = new Map<string, { at: number; result: Promise<QueueBacklog> }>();

  constructor(feeder: Feeder, redis: Redis, prefix: string, ttlMs = 5000) {
    this.#feeder = feeder;
    this.#redis = redis;
    this.#prefix = prefix;
    this.#ttlMs = ttlMs;
  }

  /** One queue's backlog, counted at most once per `ttlMs`. */
  queue(name: string): Promise<QueueBacklog> {
    const now = performance.now();
    const hit = this.#memo.get(name);
    if (hit && now - hit.at < this.#ttlMs) return hit.result;
    const result = this.#feeder.backlog(name);
    if (this.#memo.size >= 256) this.#memo.clear(); // one-off ?queue= values must not pile up
    this.#memo.set(name, { at: now, result });
    // A failed count is not kept: the next caller asks Redis again.
    result.catch(() => this.#memo.get(name)?.result === result && this.#memo.delete(name));
    return result;
  }

  /** The backlog of every queue a (valid) query covers. */
  async read(query: BacklogQuery): Promise<BacklogReport> {
    const queues = await Promise.all(
      (await backlogQueues(query, this.#redis, this.#prefix)).map(async (queue) => {
        const b = await this.queue(queue);
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
}

/**
 * Registers `docbatch_queue_units_unfed{queue}`: units of each infer queue (every one in use
 * under the prefix, read at each scrape) not yet made BullMQ jobs.
 * `docbatch_queue_jobs{state="waiting"}` plus this is what waits for a worker.
 */
export function registerBacklogMetrics(registry: Registry, reader: BacklogReader, timeoutMs = 2000): void {
  new Gauge({
    name: `${METRIC_PREFIX}queue_units_unfed`,
    help: 'Units of documents waiting in the fair feeding round of each infer queue, not yet BullMQ jobs (read from Redis when scraped).',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      this.reset();
      const report = await withDeadline(reader.read({}), timeoutMs).catch(() => null);
      for (const q of report?.queues ?? []) this.set({ queue: q.queue }, q.unfed);
    },
  });
}
