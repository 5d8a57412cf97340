/**
 * Outputs in object storage (OUT_DIR `s3://bucket/prefix`): the same relative paths as in a
 * folder, as keys under the prefix, and the same bytes. Each output appears whole or not at all:
 * one PUT when it fits in a part, else a multipart upload (@aws-sdk/lib-storage) that S3 makes
 * visible only on completion and aborts on failure. A stream that fails part-way aborts its
 * upload, so nothing is left under the output's key. Where an output is: `s3://bucket/key`.
 *
 * Containment: a relative path that is absolute or has an empty, `.` or `..` part is refused
 * (WRITE_FAILED, permanent), so every key stays under the prefix. Other failures (throttling and
 * 5xx after the SDK's retries, a bucket gone, credentials refused) are WRITE_FAILED and retried
 * by the write job's attempts.
 */
import { PassThrough } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Upload } from '@aws-sdk/lib-storage';
import { s3Sdk, s3Storage } from '../store/aws.ts';
import { DocbatchError } from '../errors.ts';
import { formatLocation, keyUnder, parseS3Uri, s3Uri, type S3Location } from '../s3-uri.ts';
import { classifyS3Error, explainS3Error, reachBucket } from '../store/s3.ts';
import { PermanentWriteError, type OutputSink } from './atomic.ts';

export interface S3SinkOptions {
  /** Outputs above this are uploaded in parts of this size. @defaultValue 16 MiB (at least 5 MiB) */
  partSizeBytes?: number;
}

/** Longest key S3 accepts, in UTF-8 bytes. */
const MAX_KEY_BYTES = 1024;

export class S3Sink implements OutputSink {
  readonly root: string;
  readonly remote = true;
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly partSize: number;

  constructor(client: S3Client, location: S3Location, options: S3SinkOptions = {}) {
    this.client = client;
    this.bucket = location.bucket;
    this.prefix = location.prefix;
    this.root = formatLocation(location);
    this.partSize = Math.max(5 * 1024 * 1024, options.partSizeBytes ?? 16 * 1024 * 1024);
  }

  /** The key of `relPath`, refused unless it stays strictly under the prefix. */
  keyOf(relPath: string): string {
    const parts = relPath.split('/');
    if (relPath.startsWith('/') || /^[A-Za-z]:[\\/]/.test(relPath)) throw new PermanentWriteError(`output path ${JSON.stringify(relPath)} is absolute; outputs stay inside OUT_DIR ${this.root}`);
    if (relPath === '' || parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\\'))) {
      throw new PermanentWriteError(`output path ${JSON.stringify(relPath)} leads outside OUT_DIR ${this.root} (empty, ".", ".." or "\\" in it)`);
    }
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(relPath)) throw new PermanentWriteError(`output path ${JSON.stringify(relPath)} has control characters`);
    const key = keyUnder(this.prefix, relPath);
    if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new PermanentWriteError(`output key for ${JSON.stringify(relPath)} is longer than S3's ${MAX_KEY_BYTES} bytes`);
    return key;
  }

  locationOf(relPath: string): string {
    return s3Uri(this.bucket, this.keyOf(relPath));
  }

  async reach(): Promise<void> {
    try {
      await reachBucket(this.client, this.bucket, this.prefix);
    } catch (err) {
      const kind = classifyS3Error(err);
      const why = kind === 'missing-key' || kind === 'missing-bucket' ? `OUT_DIR ${this.root}: the bucket ${this.bucket} does not exist (create it, or fix OUT_DIR)` : explainS3Error(err, `OUT_DIR ${this.root}`);
      throw new DocbatchError('WRITE_FAILED', why, { cause: err });
    }
  }

  async writeWhole(relPath: string, content: string | Buffer): Promise<string> {
    const Key = this.keyOf(relPath);
    const Body = typeof content === 'string' ? Buffer.from(content) : content;
    try {
      if (Body.length <= this.partSize) {
        await this.client.send(new (s3Sdk().PutObjectCommand)({ Bucket: this.bucket, Key, Body, ContentLength: Body.length, ContentType: contentType(Key) }));
      } else {
        await this.upload(Key, Body).done();
      }
    } catch (err) {
      throw this.failed(err, Key);
    }
    return s3Uri(this.bucket, Key);
  }

  async writeStream(relPath: string, fill: (write: (chunk: string) => Promise<void>) => Promise<void>): Promise<string> {
    const Key = this.keyOf(relPath);
    const body = new PassThrough({ highWaterMark: 1024 * 1024 });
    const upload = this.upload(Key, body);
    const done = upload.done();
    done.catch(() => {});
    const write = async (chunk: string) => {
      if (!body.write(chunk)) await Promise.race([new Promise<void>((r) => body.once('drain', () => r())), done]);
    };
    try {
      await Promise.race([fill(write), done]);
      body.end();
      await done;
    } catch (err) {
      // Nothing appears: a single PUT is sent only once the body ended, a multipart upload is aborted.
      await upload.abort().catch(() => {});
      body.destroy();
      throw err instanceof DocbatchError ? err : this.failed(err, Key);
    }
    return s3Uri(this.bucket, Key);
  }

  async remove(relPath: string): Promise<void> {
    const Key = this.keyOf(relPath);
    try {
      await this.client.send(new (s3Sdk().DeleteObjectCommand)({ Bucket: this.bucket, Key }));
    } catch (err) {
      if (classifyS3Error(err) !== 'missing-key') throw this.failed(err, Key);
    }
  }

  async exists(location: string): Promise<boolean> {
    const { bucket, prefix: key } = parseS3Uri(location, 'output');
    try {
      await this.client.send(new (s3Sdk().HeadObjectCommand)({ Bucket: bucket, Key: key }));
      return true;
    } catch (err) {
      if (classifyS3Error(err) === 'missing-key') return false;
      throw this.failed(err, key);
    }
  }

  /** Outputs outside this bucket and prefix, or a store that does not answer (after retries): null. */
  async outputsPresent(locations: string[]): Promise<boolean | null> {
    if (locations.length === 0) return false;
    const under = this.prefix === '' ? '' : `${this.prefix}/`;
    for (const location of locations) {
      let where: S3Location;
      try {
        where = parseS3Uri(location, 'output');
      } catch {
        return null;
      }
      if (where.bucket !== this.bucket || !where.prefix.startsWith(under) || where.prefix === under) return null;
    }
    try {
      for (const location of locations) if (!(await this.exists(location))) return false;
      return true;
    } catch {
      return null;
    }
  }

  private upload(Key: string, Body: PassThrough | Buffer): Upload {
    return new (s3Storage().Upload)({ client: this.client, params: { Bucket: this.bucket, Key, Body, ContentType: contentType(Key) }, partSize: this.partSize, queueSize: 4, leavePartsOnError: false });
  }

  private failed(err: unknown, Key: string): DocbatchError {
    if (err instanceof DocbatchError) return err;
    return new DocbatchError('WRITE_FAILED', explainS3Error(err, `cannot write ${s3Uri(this.bucket, Key)}`), { cause: err });
  }
}

function contentType(key: string): string {
  if (key.endsWith('.md')) return 'text/markdown; charset=utf-8';
  if (key.endsWith('.jsonl')) return 'application/x-ndjson';
  if (key.endsWith('.json')) return 'application/json';
  return 'application/octet-stream';
}
