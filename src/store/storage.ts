/**
 * The blob store that BLOB_DIR names: a LocalBlobStore for a folder, an S3BlobStore (with its
 * local cache in CACHE_DIR) for `s3://bucket/prefix`. A process makes one S3 client (it pools
 * connections) and hands it to its store and its output sink; nothing is kept here.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config.ts';
import { isS3Uri, parseS3Uri } from '../s3-uri.ts';
import { BlobCache } from './blob-cache.ts';
import type { BlobGuard, BlobStore } from './blobs.ts';
import { LocalBlobStore } from './blobs-local.ts';
import { S3BlobStore } from './blobs-s3.ts';
import { createS3Client } from './s3.ts';

export type StorageConfig = Pick<Config, 'blobDir' | 'cacheDir' | 'cacheMaxBytes' | 's3ForcePathStyle' | 's3MaxAttempts' | 's3PartSizeMb'> & ClientConfig;

/** What an S3 client is made from (S3_CHECKSUMS may be left out: only where S3 requires them). */
export type ClientConfig = Pick<Config, 's3ForcePathStyle' | 's3MaxAttempts'> & Partial<Pick<Config, 's3Checksums'>>;

/** A client configured from the settings (region, endpoint and credentials: the SDK's own chains). */
export function s3ClientFor(config: ClientConfig): S3Client {
  return createS3Client({ forcePathStyle: config.s3ForcePathStyle, maxAttempts: config.s3MaxAttempts, ...(config.s3Checksums ? { checksums: config.s3Checksums } : {}) });
}

/**
 * The store BLOB_DIR names. `s3` gives the client for s3:// (a function, so that a local store
 * never makes one); made from the settings when absent. Producers pass a `guard` (BlobPins) so
 * that gc leaves the blobs they store or find alone until their records name them.
 */
export function openBlobStore(config: StorageConfig, s3: () => S3Client = () => s3ClientFor(config), options: { guard?: BlobGuard } = {}): BlobStore {
  if (!isS3Uri(config.blobDir)) return new LocalBlobStore(config.blobDir, options);
  return new S3BlobStore({
    ...options,
    client: s3(),
    location: parseS3Uri(config.blobDir, 'BLOB_DIR'),
    cache: new BlobCache({ dir: config.cacheDir, maxBytes: config.cacheMaxBytes }),
    partSizeBytes: config.s3PartSizeMb * 1024 * 1024,
  });
}

/** A client made on first use and shared after (one per process or per component). */
export function lazyS3Client(config: ClientConfig): () => S3Client {
  let client: S3Client | undefined;
  return () => (client ??= s3ClientFor(config));
}
