/**
 * The S3 requests of the blob store in object storage (blobs-s3.ts), and what each failure means
 * there. The blob store decides which key holds what; this module reads and writes a key:
 *
 *   upload     one object whole: one PUT, or a multipart upload above the part size that S3 makes
 *              visible only when complete (and aborts on failure)
 *   read       a GET whose body is cut off mid-way is fetched again (up to 3 times); a blob not
 *              shown yet is waited for a few seconds (a store that shows new objects late);
 *              `openVersion` resumes a cut-off body from the same version (If-Match on its ETag)
 *   faults     the bucket missing, credentials refused, a store that does not answer (after the
 *              SDK's retries): BLOB_STORE_UNAVAILABLE; a key missing while the bucket answers:
 *              BLOB_MISSING (src/store/blobs.ts)
 */
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { s3Sdk, s3Storage } from './aws.ts';
import { DocbatchError } from '../errors.ts';
import { sleep } from '../timeouts.ts';
import { ifMatch, sameETag } from './etag.ts';
import { NamedObjectChanged, readAborted } from './blobs.ts';
import { classifyS3Error, explainS3Error, listObjects, preconditionFailed, reachBucket, s3Uri } from './s3.ts';

export interface S3ObjectsParts {
  client: S3Client;
  bucket: string;
  prefix: string;
  /** The store's location as said in messages (`s3://bucket/prefix`). */
  location: string;
  /** Objects above this are uploaded in parts of this size (at least 5 MiB). */
  partSize: number;
}

/** Waits before a blob that is not there yet counts as missing (about 5 s in all). */
const BLOB_VISIBLE_DELAYS_MS = [250, 1000, 3500];

export class S3Objects {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly location: string;
  readonly partSize: number;

  constructor(parts: S3ObjectsParts) {
    this.client = parts.client;
    this.bucket = parts.bucket;
    this.prefix = parts.prefix;
    this.location = parts.location;
    this.partSize = parts.partSize;
  }

  uri(key: string): string {
    return s3Uri(this.bucket, key);
  }

  async reach(): Promise<void> {
    try {
      await reachBucket(this.client, this.bucket, this.prefix);
    } catch (err) {
      // HEAD has no body: a missing bucket is a bare 404.
      const kind = classifyS3Error(err);
      const why = kind === 'missing-key' || kind === 'missing-bucket' ? `BLOB_DIR ${this.location}: the bucket ${this.bucket} does not exist (create it, or fix BLOB_DIR)` : explainS3Error(err, `BLOB_DIR ${this.location}`);
      throw new DocbatchError('BLOB_STORE_UNAVAILABLE', why, { cause: err });
    }
  }

  /**
   * An object as a stream of one version, or null when there is none. The first GET's ETag is
   * kept, and a body cut off mid-way is resumed from where it stopped with If-Match on it (up to
   * 3 times); an object replaced meanwhile (412, or another ETag from a store that ignores
   * If-Match) fails the stream with NamedObjectChanged (`key`: the named object's key, for it).
   */
  async openVersion(key: string, Key: string): Promise<AsyncGenerator<Buffer> | null> {
    let first;
    try {
      first = await this.client.send(new (s3Sdk().GetObjectCommand)({ Bucket: this.bucket, Key }));
    } catch (err) {
      const failure = await this.readError(this.uri(Key), err);
      if (failure.code === 'BLOB_MISSING') return null;
      throw failure;
    }
    return this.resumed(key, Key, first.Body as Readable, first.ETag, first.ContentLength);
  }

  /** The body of a named object, resumed from the same version when cut off (openVersion). */
  private async *resumed(key: string, Key: string, body: Readable, etag: string | undefined, size: number | undefined): AsyncGenerator<Buffer> {
    let offset = 0;
    for (let cuts = 0; ; ) {
      let cut: unknown = null;
      try {
        for await (const chunk of body) {
          offset += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
      } catch (err) {
        cut = err;
      }
      if (cut === null && (size === undefined || offset >= size)) return;
      body.destroy();
      cut ??= new Error(`the body ended after ${offset} of its ${size} bytes`);
      if (++cuts >= 3 || etag === undefined) throw new DocbatchError('BLOB_STORE_UNAVAILABLE', `cannot read ${this.uri(Key)} from ${this.location}: ${(cut as Error).message}`, { cause: cut });
      let sent: string | undefined;
      try {
        const res = await this.client.send(new (s3Sdk().GetObjectCommand)({ Bucket: this.bucket, Key, Range: `bytes=${offset}-`, IfMatch: ifMatch(etag) }));
        body = res.Body as Readable;
        sent = res.ETag;
      } catch (err) {
        if (preconditionFailed(err)) throw new NamedObjectChanged(key, { cause: err });
        throw await this.readError(this.uri(Key), err);
      }
      // A store that ignores If-Match still says which version it sent.
      if (sent === undefined || !sameETag(sent, etag)) {
        body.destroy();
        throw new NamedObjectChanged(key);
      }
    }
  }

  /**
   * One object whole: a single PUT, or multipart above the part size (visible only once
   * complete; `size` infinite: a stream of unknown length, known to pass a part).
   */
  async upload(Key: string, body: () => Readable | Buffer, size: number): Promise<void> {
    try {
      if (size <= this.partSize) {
        const b = body();
        const Body = Buffer.isBuffer(b) ? b : await collect(b);
        await this.client.send(new (s3Sdk().PutObjectCommand)({ Bucket: this.bucket, Key, Body, ContentLength: Body.length }));
      } else {
        await new (s3Storage().Upload)({ client: this.client, params: { Bucket: this.bucket, Key, Body: body() }, partSize: this.partSize, queueSize: 4, leavePartsOnError: false }).done();
      }
    } catch (err) {
      throw this.unavailable(err, `cannot write ${this.uri(Key)}`);
    }
  }

  async getBytes(Key: string, Range: string | undefined, sha256: string | null, signal: AbortSignal | undefined): Promise<Buffer> {
    let out: Buffer = Buffer.alloc(0);
    await this.withBody(Key, Range, sha256, signal, async (body) => {
      out = await collect(body);
    });
    return out;
  }

  /**
   * GETs an object and hands its body to `consume`. The SDK retries the request; a body cut off
   * mid-way (a connection reset) is fetched again here, up to 3 times. `signal` ends the request,
   * the body and the wait for a blob not shown yet: ABORTED.
   */
  async withBody(Key: string, Range: string | undefined, sha256: string | null, signal: AbortSignal | undefined, consume: (body: Readable) => Promise<void>): Promise<void> {
    const what = sha256 ? `blob ${sha256.slice(0, 12)}` : this.uri(Key);
    for (let attempt = 1, absent = 0; ; attempt++) {
      if (signal?.aborted) throw readAborted(signal, what);
      let body: Readable;
      try {
        const res = await this.client.send(new (s3Sdk().GetObjectCommand)({ Bucket: this.bucket, Key, ...(Range ? { Range } : {}) }), { abortSignal: signal });
        body = res.Body as Readable;
      } catch (err) {
        if (signal?.aborted) throw readAborted(signal, what);
        // A blob is named only once it was stored: a store that shows new objects late (eventual
        // consistency, a replica behind) is given a few seconds before the blob counts as missing.
        if (sha256 !== null && classifyS3Error(err) === 'missing-key' && absent < BLOB_VISIBLE_DELAYS_MS.length) {
          const ms = BLOB_VISIBLE_DELAYS_MS[absent++]!;
          await (signal ? sleep(ms, signal, `waiting for ${what} to show in ${this.location}`) : new Promise((r) => setTimeout(r, ms)));
          attempt--;
          continue;
        }
        throw await this.readError(what, err);
      }
      try {
        await consume(body);
        return;
      } catch (err) {
        body.destroy();
        if (signal?.aborted) throw readAborted(signal, what);
        if (err instanceof DocbatchError) throw err;
        if (attempt >= 3) throw new DocbatchError('BLOB_STORE_UNAVAILABLE', `cannot read ${what} from ${this.location}: ${(err as Error).message}`, { cause: err });
      }
    }
  }

  /** A failed GET: the blob's fault when the bucket answers and the key is not there; the store's otherwise. */
  private async readError(what: string, err: unknown): Promise<DocbatchError> {
    if (classifyS3Error(err) !== 'missing-key') return this.unavailable(err, `cannot read ${what}`);
    try {
      await this.reach();
    } catch (unreachable) {
      return unreachable as DocbatchError;
    }
    return new DocbatchError('BLOB_MISSING', `${what} is not in ${this.location} although the bucket answers (deleted or collected?)`, { cause: err });
  }

  unavailable(err: unknown, doing: string): DocbatchError {
    if (err instanceof DocbatchError) return err;
    return new DocbatchError('BLOB_STORE_UNAVAILABLE', explainS3Error(err, `${doing} (${this.location})`), { cause: err });
  }

  async delete(Key: string): Promise<void> {
    try {
      await this.client.send(new (s3Sdk().DeleteObjectCommand)({ Bucket: this.bucket, Key }));
    } catch (err) {
      if (classifyS3Error(err) === 'missing-key') return;
      throw this.unavailable(err, `cannot delete ${this.uri(Key)}`);
    }
  }

  async *list(prefix: string): AsyncGenerator<{ key: string; size: number; modifiedMs: number }> {
    yield* listObjects(this.client, this.bucket, prefix, (err) => this.unavailable(err, `cannot list ${this.uri(prefix)}`));
  }
}

/** A stream read whole. */
export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
