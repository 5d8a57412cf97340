/**
 * What a producer-side command (`enqueue`, `retry`) opens to change documents: one Redis
 * connection, the document store, the infer queues (opened on first use, one per queue name),
 * the write queue, the blob store and the feeder, as ReopenParts; `close()` closes the queues
 * and the connection, once.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Redis } from 'ioredis';
import { connectRedis, openInferQueues, openQueue, type TypedQueue } from '../../queues/connect.ts';
import type { Config } from '../config.ts';
import { DocbatchError } from '../errors.ts';
import { BlobPins } from '../store/blob-pins.ts';
import { ChunkReader } from '../store/chunk-index.ts';
import { DocStore } from '../store/docs.ts';
import { Feeder } from '../store/feed.ts';
import type { ReopenParts } from '../store/reopen.ts';
import { lazyS3Client, openBlobStore } from '../store/storage.ts';

export interface ClientParts extends ReopenParts {
  redis: Redis;
  /** The S3 client, made on first use (never for folders). */
  s3: () => S3Client;
  /** Throws REDIS_UNREACHABLE unless Redis answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** `pinBlobs`: every blob stored or found is pinned first, so gc leaves it alone until a record names it (enqueue). */
export function openClientParts(config: Config, options: { pinBlobs?: boolean } = {}): ClientParts {
  const redis = connectRedis(config.redisUrl, 'client');
  const queues = openInferQueues(config, redis);
  const inferQueue = (name: string): TypedQueue<'infer'> => queues.get(name);
  const writeQueue = openQueue('write', config, redis);
  const s3 = lazyS3Client(config);
  const blobs = openBlobStore(config, s3, options.pinBlobs ? { guard: new BlobPins(redis, config.prefix) } : {});
  let closing: Promise<void> | undefined;
  return {
    redis,
    s3,
    store: new DocStore(redis, config.prefix),
    blobs,
    chunks: new ChunkReader(blobs),
    feeder: new Feeder(redis, config.prefix, inferQueue, { documents: config.feedDocuments }),
    writeQueue,
    inferQueue,
    async ping() {
      try {
        await redis.ping();
      } catch (err) {
        throw new DocbatchError('REDIS_UNREACHABLE', `Redis does not answer at the configured REDIS_URL: ${(err as Error).message}`, { cause: err });
      }
    },
    close() {
      closing ??= Promise.allSettled([queues.close(), writeQueue.close()]).then(() => redis.disconnect());
      return closing;
    },
  };
}
