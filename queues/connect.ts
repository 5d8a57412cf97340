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

export function openQueue<Q extends ContractName>(name: Q, target: RedisTarget & { attempts: number }, connection: Redis): TypedQueue<Q> {
  return new Queue(QUEUES[name], {
    connection,
    prefix: target.prefix,
    defaultJobOptions: defaultJobOptions(QUEUES[name], target.attempts),
  }) as TypedQueue<Q>;
}

export function openWorker<Q extends ContractName>(
  name: Q,
  processor: TypedProcessor<Q>,
  target: RedisTarget,
  connection: Redis,
  options: Omit<WorkerOptions, 'connection' | 'prefix'> = {},
): TypedWorker<Q> {
  return new Worker(QUEUES[name], processor, { ...options, connection, prefix: target.prefix }) as TypedWorker<Q>;
}

/** The Redis key BullMQ uses for a job's lock: `{prefix}:{queue}:{jobId}:lock`. */
export function jobLockKey(prefix: string, name: ContractName, jobId: string): string {
  return `${prefix}:${QUEUES[name]}:${jobId}:lock`;
}
