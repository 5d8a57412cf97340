/**
 * Inputs in object storage: `docbatch enqueue s3://bucket/prefix/` lists the objects under the
 * prefix (in key order; `--glob` on the key relative to the prefix), and each object is prepared
 * without a local copy of the input set:
 *
 *   detect       ranged GETs of the first bytes (64 KiB, more only when JSON needs it)
 *   PDF, image   one download into a temporary of the blob store (hashed on the way), inspected
 *                there, then adopted as the blob (a rename into a local store, an upload into an
 *                S3 one); removed either way
 *   .zip export  downloaded the same way (its directory is at the end), split from there
 *   JSON, JSONL  streamed from one GET through the splitter, hashed on the way: no local copy
 *
 * The names in places are the s3:// URIs; the codes are the same as for local files (an object
 * that cannot be listed or read is FILE_UNREADABLE with the reason).
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { s3Sdk } from '../store/aws.ts';
import { DocbatchError, InputError } from '../errors.ts';
import { parseS3Uri, s3Uri } from '../s3-uri.ts';
import type { BlobRef, BlobStore } from '../store/blobs.ts';
import { classifyS3Error, explainS3Error, listObjects } from '../store/s3.ts';
import { detectFrom, detectZip, type FileKind } from './detect.ts';

export interface WalkedObject {
  path: string;
  explicit: boolean;
}

/**
 * The objects an `s3://` input names: the object itself when its key exists (and does not end
 * in `/`), else everything under `<key>/`. Nothing found: the input is yielded as named, to be
 * rejected as FILE_UNREADABLE with the reason.
 */
export async function* walkS3(input: string, client: S3Client, pattern: RegExp | null, signal?: AbortSignal): AsyncGenerator<WalkedObject> {
  let bucket: string;
  let key: string;
  try {
    ({ bucket, prefix: key } = parseS3Uri(input, 'input'));
  } catch {
    yield { path: input, explicit: true };
    return;
  }
  if (key !== '' && !input.endsWith('/')) {
    try {
      await client.send(new (s3Sdk().HeadObjectCommand)({ Bucket: bucket, Key: key }));
      yield { path: input, explicit: true };
      return;
    } catch (err) {
      if (classifyS3Error(err) !== 'missing-key') {
        yield { path: input, explicit: true };
        return;
      }
    }
  }
  const folder = key === '' ? '' : `${key}/`;
  let found = 0;
  try {
    for await (const object of listObjects(client, bucket, folder, (err) => err as Error)) {
      signal?.throwIfAborted();
      const rel = object.key.slice(folder.length);
      if (rel === '' || rel.endsWith('/')) continue; // "folder" placeholders
      found++;
      if (pattern && !pattern.test(rel)) continue;
      yield { path: s3Uri(bucket, object.key), explicit: false };
    }
  } catch (err) {
    if (signal?.aborted) throw err;
    if (found === 0) yield { path: input, explicit: true }; // rejected with the reason when read
    else throw new InputError('FILE_UNREADABLE', explainS3Error(err, `cannot list ${input}`), { cause: err, place: { file: input } });
    return;
  }
  if (found === 0) yield { path: input, explicit: true };
}

/** One object being prepared; `release()` removes what it left on this machine. */
export class S3Input {
  readonly uri: string;
  readonly size: number;
  private readonly client: S3Client;
  private readonly blobs: BlobStore;
  private readonly bucket: string;
  private readonly key: string;
  private head: Buffer = Buffer.alloc(0);
  private copy: Promise<{ path: string; sha256: string }> | null = null;

  private constructor(uri: string, client: S3Client, blobs: BlobStore, bucket: string, key: string, size: number) {
    this.uri = uri;
    this.client = client;
    this.blobs = blobs;
    this.bucket = bucket;
    this.key = key;
    this.size = size;
  }

  /** HEADs the object; FILE_UNREADABLE (with the reason) when it cannot be. */
  static async open(uri: string, client: S3Client, blobs: BlobStore): Promise<S3Input> {
    let bucket: string;
    let key: string;
    try {
      ({ bucket, prefix: key } = parseS3Uri(uri, 'input'));
    } catch (err) {
      throw new InputError('FILE_UNREADABLE', (err as Error).message, { cause: err, place: { file: uri } });
    }
    if (key === '' || uri.endsWith('/')) {
      // The walk found nothing under it: say why (a bucket missing, access denied) when there is a why.
      try {
        await client.send(new (s3Sdk().ListObjectsV2Command)({ Bucket: bucket, Prefix: key === '' ? '' : `${key}/`, MaxKeys: 1 }));
      } catch (err) {
        throw unreadable(uri, err);
      }
      throw new InputError('FILE_UNREADABLE', 'nothing under this prefix', { place: { file: uri } });
    }
    try {
      const head = await client.send(new (s3Sdk().HeadObjectCommand)({ Bucket: bucket, Key: key }));
      return new S3Input(uri, client, blobs, bucket, key, head.ContentLength ?? 0);
    } catch (err) {
      throw unreadable(uri, err);
    }
  }

  detect(): Promise<FileKind> {
    return detectFrom({
      size: this.size,
      readPrefix: (length) => this.readPrefix(length),
      zip: async () => detectZip((await this.local()).path, this.uri),
    });
  }

  /** The object in a local temporary (downloaded once, hashed on the way). */
  local(): Promise<{ path: string; sha256: string }> {
    this.copy ??= (async () => {
      const path = await this.blobs.tempPath('input');
      try {
        return await this.refetching(async () => {
          const hash = createHash('sha256'); // afresh for each attempt, as the file is
          await pipeline(await this.get(), hashing(hash), createWriteStream(path));
          return { path, sha256: hash.digest('hex') };
        });
      } catch (err) {
        await rm(path, { force: true });
        throw err;
      }
    })();
    return this.copy;
  }

  /** Stores the downloaded copy as the blob (the temporary is gone after). */
  async store(): Promise<BlobRef> {
    const { path, sha256 } = await this.local();
    this.copy = Promise.reject(new Error('the temporary copy was adopted'));
    this.copy.catch(() => {});
    return this.blobs.adopt(path, sha256, this.size);
  }

  /** The bytes as one stream, and their sha256 once it has been read to the end. */
  async stream(): Promise<{ stream: Readable; sha256: () => string }> {
    const hash = createHash('sha256');
    const body = await this.get();
    const stream = body.pipe(hashing(hash));
    body.once('error', (err) => stream.destroy(err));
    return { stream, sha256: () => hash.digest('hex') };
  }

  async release(): Promise<void> {
    if (!this.copy) return;
    const copy = await this.copy.catch(() => null);
    if (copy) await rm(copy.path, { force: true });
  }

  private async readPrefix(length: number): Promise<Buffer> {
    if (this.head.length >= length || this.head.length >= this.size) return this.head.subarray(0, length);
    this.head = await this.getBytes(`bytes=0-${Math.min(length, this.size) - 1}`);
    return this.head.subarray(0, length);
  }

  private async get(Range?: string): Promise<Readable> {
    try {
      const res = await this.client.send(new (s3Sdk().GetObjectCommand)({ Bucket: this.bucket, Key: this.key, ...(Range ? { Range } : {}) }));
      return res.Body as Readable;
    } catch (err) {
      throw unreadable(this.uri, err);
    }
  }

  private getBytes(Range: string): Promise<Buffer> {
    return this.refetching(async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of await this.get(Range)) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    });
  }

  /**
   * Reads a body with `read`, again when it is cut off mid-way (a connection reset), up to 3
   * times: the SDK retries the request, not the body. A refused request (DocbatchError) is final.
   */
  private async refetching<T>(read: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await read();
      } catch (err) {
        if (err instanceof DocbatchError) throw err;
        if (attempt >= 3) throw unreadable(this.uri, err);
      }
    }
  }
}

/** sha256 of an object, streamed (null when it cannot be read). */
export async function hashObject(uri: string, client: S3Client): Promise<string | null> {
  try {
    const { bucket, prefix: key } = parseS3Uri(uri, 'input');
    const res = await client.send(new (s3Sdk().GetObjectCommand)({ Bucket: bucket, Key: key }));
    const hash = createHash('sha256');
    for await (const chunk of res.Body as Readable) hash.update(chunk as Buffer);
    return hash.digest('hex');
  } catch {
    return null;
  }
}

function hashing(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
}

function unreadable(uri: string, err: unknown): InputError {
  if (err instanceof InputError) return err;
  return new InputError('FILE_UNREADABLE', explainS3Error(err, 'cannot read the object').replace(/^cannot read the object: /, ''), { cause: err, place: { file: uri } });
}
