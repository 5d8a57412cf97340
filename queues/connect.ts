/**
 * Typed access to the queues in contracts.ts: a producer's Queue, a consumer's Worker, and the
 * Redis connections they need. Nothing connects at import time; every function takes the
 * settings it needs.
 *
 * Connection errors never print by themselves: a Queue's surface through the commands that hit
 * them, a Worker's go to its RedisLink (redis-link.ts), which says once that Redis is away and
 * once that it is back, instead of one line per reconnect attempt. Workers keep BullMQ's
 * per-minute metrics (Bull Board's charts) for a week.
 */
import { MetricsTime, Queue, Worker, type Processor, type WorkerOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { defaultJobOptions, QUEUES, type QueueContracts } from './contracts.ts';
import { RedisLink } from './redis-link.ts';

export type ContractName = keyof QueueContracts;
export type TypedQueue<Q extends ContractName> = Queue<QueueContracts[Q]['data'], QueueContracts[Q]['result'], QueueContracts[Q]['name']>;
export type TypedWorker<Q extends ContractName> = Worker<QueueContracts[Q]['data'], QueueContracts[Q]['result'], QueueContracts[Q]['name']>;
export type TypedProcessor<Q extends ContractName> = Processor<QueueContracts[Q]['data'], QueueContracts[Q]['result'], QueueContracts[Q]['name']>;

/** Entries kept in each queue's BullMQ event stream (BullMQ's default is 10,000). */
export const EVENTS_MAX_LEN = 1000;

export interface RedisTarget {
  redisUrl: string;
  prefix: string;
}

/**
 * A Redis connection for docbatch's own keys and for BullMQ.
 * `role: 'worker'` waits through outages (BullMQ needs `maxRetriesPerRequest: null` for its
 * blocking commands); `role: 'client'` fails fast so a producer reports an unreachable Redis
 * instead of queueing commands in memory.
 */
export function connectRedis(url: string, role: 'worker' | 'client', extra: RedisOptions = {}): Redis {
  const options: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy: (times) => Math.min(200 * times, 2000) }
      : { maxRetriesPerRequest: 2, enableOfflineQueue: true, connectTimeout: 5000, retryStrategy: (times) => (times > 5 ? null : Math.min(200 * times, 1000)) };
  const redis = new Redis(url, { lazyConnect: false, ...options, ...extra });
  // Connection errors surface through the commands that hit them (and ioredis reconnects);
  // without a listener ioredis would print every reconnect attempt as an unhandled error.
  redis.on('error', () => {});
  return redis;
}

/** The infer queues a process uses, each opened on first use (by name) and closed together. */
export interface InferQueues {
  get(name: string): TypedQueue<'infer'>;
  /** Closes every queue opened so far, each bounded by `timeoutMs` when given; never rejects. */
  close(timeoutMs?: number): Promise<void>;
}

export function openInferQueues(target: RedisTarget & { attempts: number; writeAttempts?: number }, connection: Redis): InferQueues {
  const queues = new Map<string, TypedQueue<'infer'>>();
  return {
    get(name) {
      let q = queues.get(name);
      if (!q) queues.set(name, (q = openQueue('infer', target, connection, name)));
      return q;
    },
    async close(timeoutMs) {
      const bounded = (p: Promise<void>) => (timeoutMs === undefined ? p : Promise.race([p, new Promise<void>((r) => setTimeout(r, timeoutMs).unref())]));
      await Promise.allSettled([...queues.values()].map((q) => bounded(q.close())));
    },
  };
}

/**
 * A producer's handle on a queue. `queueName` picks one of the `infer` queues (queues/routes.ts);
 * the contract (job data, options) is the same for all of them.
 */
export function openQueue<Q extends ContractName>(name: Q, target: RedisTarget & { attempts: number; writeAttempts?: number }, connection: Redis, queueName: string = QUEUES[name]): TypedQueue<Q> {
  const queue = new Queue(queueName, {
    connection,
    prefix: target.prefix,
    // BullMQ's event stream is a trail for listeners that were away, not a record: a short one.
    streams: { events: { maxLen: EVENTS_MAX_LEN } },
    defaultJobOptions: defaultJobOptions(QUEUES[name], target.attempts, target.writeAttempts),
  });
  // Without a listener BullMQ prints every connection error (with its stack) to the console;
  // they reach the caller through the commands that hit them.
  queue.on('error', () => {});
  return queue as TypedQueue<Q>;
}

export interface OpenWorkerOptions extends Omit<WorkerOptions, 'connection' | 'prefix'> {
  /**
   * Where the worker's connection errors go. Without one, the worker gets its own link and emits
   * a single `error` (REDIS_UNREACHABLE) per outage in place of one per reconnect attempt.
   */
  link?: RedisLink;
}

export function openWorker<Q extends ContractName>(
  name: Q,
  processor: TypedProcessor<Q>,
  target: RedisTarget,
  connection: Redis,
  options: OpenWorkerOptions = {},
  queueName: string = QUEUES[name],
): TypedWorker<Q> {
  const { link: given, ...rest } = options;
  const worker = new Worker(queueName, processor, { metrics: { maxDataPoints: MetricsTime.ONE_WEEK }, ...rest, connection, prefix: target.prefix }) as TypedWorker<Q>;
  const link = given ?? new RedisLink({ url: target.redisUrl, ping: () => connection.ping() });
  if (!given) {
    link.on('down', (problem) => worker.emit('error', problem));
    worker.on('closed', () => link.close());
  }
  // Connection errors (every reconnect attempt of every connection BullMQ holds) go to the link;
  // the worker's listeners hear only the errors that are not about the connection.
  const emit = worker.emit.bind(worker) as (event: string | symbol, ...args: unknown[]) => boolean;
  (worker as unknown as { emit: typeof emit }).emit = (event, ...args) => {
    // BullMQ's own errors carry numeric codes ("Missing lock for job", -2): only a string code can
    // be one of ours. A throw here would take the whole worker down from inside BullMQ.
    const code = (args[0] as { code?: unknown } | undefined)?.code;
    if (event === 'error' && !(typeof code === 'string' && code.startsWith('REDIS_')) && link.noteError(args[0])) return true;
    return emit(event, ...args);
  };
  return worker;
}

/** The Redis key BullMQ uses for a job's lock: `{prefix}:{queue}:{jobId}:lock`. */
export function jobLockKey(prefix: string, queueName: string, jobId: string): string {
  return `${prefix}:${queueName}:${jobId}:lock`;
}

/** The Redis key of a job's hash: `{prefix}:{queue}:{jobId}` (exists while the job does). */
export function jobKey(prefix: string, queueName: string, jobId: string): string {
  return `${prefix}:${queueName}:${jobId}`;
}

/** The Redis hash of a queue's settings: `{prefix}:{queue}:meta` (field `paused` while it is paused). */
export function queueMetaKey(prefix: string, queueName: string): string {
  return `${prefix}:${queueName}:meta`;
}

/** The Redis list of a queue's active jobs: `{prefix}:{queue}:active`. */
export function activeListKey(prefix: string, queueName: string): string {
  return `${prefix}:${queueName}:active`;
}
