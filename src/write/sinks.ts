/**
 * The output sink OUT_DIR names: a LocalSink (atomic.ts) for a folder, an S3Sink (sink-s3.ts) for
 * `s3://bucket/prefix`. The writer writes through it; `docbatch enqueue` asks it whether a
 * written document's outputs are still there (enqueueing it again says `done`, or writes again).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config.ts';
import { isS3Uri, parseS3Uri } from '../s3-uri.ts';
import { s3ClientFor, type ClientConfig } from '../store/storage.ts';
import { LocalSink, type OutputSink } from './atomic.ts';
import { S3Sink } from './sink-s3.ts';

/** `s3` gives the client for s3:// (a function, so that a folder never makes one). */
export function openSink(config: Pick<Config, 'outDir' | 's3PartSizeMb' | 'lockDurationMs'> & ClientConfig, s3: () => S3Client = () => s3ClientFor(config)): OutputSink {
  // A temporary file untouched for a lock's duration: its writer lost the write job's lock.
  if (!isS3Uri(config.outDir)) return new LocalSink(config.outDir, { leftoverAfterMs: config.lockDurationMs });
  return new S3Sink(s3(), parseS3Uri(config.outDir, 'OUT_DIR'), { partSizeBytes: config.s3PartSizeMb * 1024 * 1024 });
}
