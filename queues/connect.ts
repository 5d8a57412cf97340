/**
 * Typed access to the queues in contracts.ts: a producer's Queue, a consumer's Worker, and the
 * Redis connections they need. Nothing connects at import time; every function takes the
 * settings it needs.
 */
import { Queue, Worker, type Processor, type WorkerOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { defaultJobOptions, QUEUES, type QueueContracts } from './contracts.ts';

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

/**
 * A producer's handle on a queue. `queueName` picks one of the `infer` queues (queues/routes.ts);
 * the contract (job data, options) is the same for all of them.
 */
export function openQueue<Q extends ContractName>(name: Q, target: RedisTarget & { attempts: number; writeAttempts?: number }, connection: Redis, queueName: string = QUEUES[name]): TypedQueue<Q> {
  return new Queue(queueName, {
    connection,
    prefix: target.prefix,
    // BullMQ's event stream is a trail for listeners that were away, not a record: a short one.
    streams: { events: { maxLen: EVENTS_MAX_LEN } },
    defaultJobOptions: defaultJobOptions(QUEUES[name], target.attempts, target.writeAttempts),
  }) as TypedQueue<Q>;
}

export function openWorker<Q extends ContractName>(
  name: Q,
  processor: TypedProcessor<Q>,
  target: RedisTarget,
  connection: Redis,
  options: Omit<WorkerOptions, 'connection' | 'prefix'> = {},
  queueName: string = QUEUES[name],
): TypedWorker<Q> {
  return new Worker(queueName, processor, { ...options, connection, prefix: target.prefix }) as TypedWorker<Q>;
}

/** The Redis key BullMQ uses for a job's lock: `{prefix}:{queue}:{jobId}:lock`. */
export function jobLockKey(prefix: string, queueName: string, jobId: string): string {
  return `${prefix}:${queueName}:${jobId}:lock`;
}

/** The Redis key of a job's hash: `{prefix}:{queue}:{jobId}` (exists while the job does). */
export function jobKey(prefix: string, queueName: string, jobId: string): string {
  return `${prefix}:${queueName}:${jobId}`;
}
