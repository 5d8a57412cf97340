/**
 * `docbatch enqueue FILE...` without the printing: prepare every file (a rejected file is
 * reported and skipped, the others go on), give clashing base names their hash suffix, and
 * enqueue each document. Used by the CLI, the demo and the tests.
 */
import { connectRedis, openQueue } from '../../queues/connect.ts';
import type { Config } from '../config.ts';
import { DocbatchError, InputError, toDocbatchError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import { DocStore } from '../store/docs.ts';
import { BlobStore } from './blobs.ts';
import { Producer, type EnqueueReport } from './enqueue.ts';
import { PdfInspector } from './pdf.ts';
import { prepareFile, type PreparedDoc } from './prepare.ts';

export interface FileOutcome {
  file: string;
  /** Set when the file went in (or was already there). */
  report?: EnqueueReport & { kind: 'pdf' | 'chat' };
  /** Set when the file was rejected. */
  error?: DocbatchError;
}

export interface EnqueueFilesOptions {
  password?: string;
  /** Chat exports: add a summary per conversation made from its chunks' summaries. */
  conversationSummary?: boolean;
  force?: boolean;
  outDir?: string;
  signal?: AbortSignal;
  /** Units per addBulk call. @defaultValue 1000 */
  bulkSize?: number;
  /** Called as each file is decided, so the CLI can print lines as they come. */
  onOutcome?: (outcome: FileOutcome) => void;
}

export async function enqueueFiles(files: string[], config: Config, log: Logger, options: EnqueueFilesOptions = {}): Promise<FileOutcome[]> {
  const redis = connectRedis(config.redisUrl, 'client');
  const store = new DocStore(redis, config.prefix);
  const infer = openQueue('infer', config, redis);
  const write = openQueue('write', config, redis);
  const blobs = new BlobStore(config.blobDir);
  const inspector = new PdfInspector();
  const outcomes: FileOutcome[] = [];
  const emit = (o: FileOutcome) => {
    outcomes.push(o);
    options.onOutcome?.(o);
  };
  try {
    try {
      await redis.ping();
    } catch (err) {
      throw new DocbatchError('REDIS_UNREACHABLE', `Redis does not answer at the configured REDIS_URL: ${(err as Error).message}`, { cause: err });
    }
    const prepared: PreparedDoc[] = [];
    for (const file of files) {
      options.signal?.throwIfAborted();
      try {
        prepared.push(
          await prepareFile(file, blobs, {
            inspector,
            ...(options.password ? { password: options.password } : {}),
            ...(options.conversationSummary ? { conversationSummary: true } : {}),
            chunkTokens: config.chunkTokens,
            chunkOverlapTokens: config.chunkOverlapTokens,
            limits: { maxChunks: config.exportMaxChunks, maxZipRatio: config.zipMaxRatio, maxZipBytes: config.zipMaxBytes },
            ...(options.signal ? { signal: options.signal } : {}),
          }),
        );
      } catch (err) {
        if (!(err instanceof InputError)) throw err;
        log.debug({ file, code: err.code }, 'file rejected');
        emit({ file, error: err });
      }
    }

    // Base names shared by different contents in this one command all get the hash suffix.
    const owners = new Map<string, Set<string>>();
    for (const doc of prepared) owners.set(doc.baseName, (owners.get(doc.baseName) ?? new Set()).add(doc.docId));
    const clashingNames = new Set([...owners].filter(([, ids]) => ids.size > 1).map(([name]) => name));

    const producer = new Producer({ store, infer, write, log });
    for (const doc of prepared) {
      options.signal?.throwIfAborted();
      try {
        const report = await producer.enqueue(doc, {
          force: options.force ?? false,
          ...(options.outDir ? { outDir: options.outDir } : {}),
          maxQueued: config.maxQueued,
          ...(options.bulkSize ? { bulkSize: options.bulkSize } : {}),
          clashingNames,
          ...(options.signal ? { signal: options.signal } : {}),
        });
        emit({ file: doc.source, report: { ...report, kind: doc.kind } });
      } catch (err) {
        if (err instanceof InputError) emit({ file: doc.source, error: err });
        else throw toDocbatchError(err);
      }
    }
    return outcomes;
  } finally {
    await Promise.allSettled([infer.close(), write.close(), inspector.close()]);
    redis.disconnect();
  }
}
