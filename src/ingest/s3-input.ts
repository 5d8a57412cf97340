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
 *
 * One version: the HEAD says which (its ETag), and every GET after it asks for that one
 * (If-Match) and checks the ETag it got, for stores that ignore If-Match. An object replaced
 * meanwhile is FILE_CHANGED, as a local file rewritten while it is read: never registered under
 * bytes of another version, or of two. A HEAD that gives no length leaves it unknown (not 0): the
 * first ranged GET says it (Content-Range). The producer's AbortSignal ends every request.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { s3Sdk } from '../store/aws.ts';
import { DocbatchError, InputError } from '../errors.ts';
import { parseS3Object, s3Uri } from '../s3-uri.ts';
import type { BlobRef, BlobStore } from '../store/blobs.ts';
import { ifMatch, sameETag } from '../store/etag.ts';
import { within, type OwnFolder } from '../store/locations.ts';
import { classifyS3Error, explainS3Error, listObjects, preconditionFailed } from '../store/s3.ts';
import { detectFrom, detectZip, type FileKind } from './detect.ts';
import type { GlobMatcher } from './glob.ts';

export interface WalkedObject {
  path: string;
  explicit: boolean;
  /** Not read, and why (docbatch's own folder under the prefix). */
  passed?: string;
}

/**
 * The objects an `s3://` input names: the object itself when its key exists (and does not end
 * in `/`), else everything under `<key>/` (also when the HEAD of the key is denied). Nothing
 * found: the input is yielded as named, to be rejected as FILE_UNREADABLE with the reason.
 */
/**
 * `own`: docbatch's folders (src/store/locations.ts); those under the prefix walked are skipped
 * (listed once each), never read as inputs.
 */
export async function* walkS3(input: string, client: S3Client, pattern: GlobMatcher | null, signal?: AbortSignal, own: OwnFolder[] = []): AsyncGenerator<WalkedObject> {
  let bucket: string;
  let key: string;
  try {
    ({ bucket, key } = parseS3Object(input, 'input'));
  } catch {
    yield { path: input, explicit: true };
    return;
  }
  if (key !== '' && !key.endsWith('/')) {
    try {
      await client.send(new (s3Sdk().HeadObjectCommand)({ Bucket: bucket, Key: key }));
      yield { path: input, explicit: true };
      return;
    } catch (err) {
      // Denied is not an answer either way: a grant of s3:GetObject on `in/*` (the usual IAM
      // scope) refuses the HEAD of `in` itself, while the objects under `in/` may be listed.
      const kind = classifyS3Error(err);
      if (kind !== 'missing-key' && kind !== 'denied') {
        yield { path: input, explicit: true };
        return;
      }
    }
  }
  const folder = folderOf(key);
  const walked = s3Uri(bucket, folder.replace(/\/+$/, ''));
  const inside = own.filter((f) => f.canonical !== walked && within(f.canonical, walked));
  const said = new Set<OwnFolder>();
  let found = 0;
  try {
    for await (const object of listObjects(client, bucket, folder, (err) => err as Error)) {
      signal?.throwIfAborted();
      const rel = object.key.slice(folder.length);
      if (rel === '' || rel.endsWith('/')) continue; // "folder" placeholders
      const ours = inside.find((f) => within(s3Uri(bucket, object.key), f.canonical));
      if (ours) {
        found++;
        if (!said.has(ours)) yield { path: ours.location, explicit: false, passed: ours.why };
        said.add(ours);
        continue;
      }
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

/** The listing prefix of an input's key: the key itself when it ends in `/`, else the key and a `/`. */
function folderOf(key: string): string {
  return key === '' || key.endsWith('/') ? key : `${key}/`;
}

/** What a first ranged GET reads when the HEAD gave no length (detect's first prefix too). */
const MEASURE_BYTES = 64 * 1024;

/** One object being prepared; `release()` removes what it left on this machine. */
export class S3Input {
  readonly uri: string;
  /** The version the HEAD found (undefined: a store that gives none; nothing to hold it to). */
  readonly etag: string | undefined;
  private readonly client: S3Client;
  private readonly blobs: BlobStore;
  private readonly bucket: string;
  private readonly key: string;
  private readonly signal: AbortSignal | undefined;
  private length: number;
  private head: Buffer = Buffer.alloc(0);
  private copy: Promise<{ path: string; sha256: string }> | null = null;

  private constructor(o: { uri: string; client: S3Client; blobs: BlobStore; bucket: string; key: string; size: number; etag: string | undefined; signal: AbortSignal | undefined }) {
    this.uri = o.uri;
    this.client = o.client;
    this.blobs = o.blobs;
    this.bucket = o.bucket;
    this.key = o.key;
    this.length = o.size;
    this.etag = o.etag;
    this.signal = o.signal;
  }

  /** Its length in bytes. */
  get size(): number {
    return this.length;
  }

  /** HEADs the object; FILE_UNREADABLE (with the reason) when it cannot be. */
  static async open(uri: string, client: S3Client, blobs: BlobStore, signal?: AbortSignal): Promise<S3Input> {
    let bucket: string;
    let key: string;
    try {
      ({ bucket, key } = parseS3Object(uri, 'input'));
    } catch (err) {
      throw new InputError('FILE_UNREADABLE', (err as Error).message, { cause: err, place: { file: uri } });
    }
    if (key === '' || key.endsWith('/')) {
      // The walk found nothing under it: say why (a bucket missing, access denied) when there is a why.
      try {
        await client.send(new (s3Sdk().ListObjectsV2Command)({ Bucket: bucket, Prefix: folderOf(key), MaxKeys: 1 }), { abortSignal: signal });
      } catch (err) {
        throw unreadable(uri, err, signal);
      }
      throw new InputError('FILE_UNREADABLE', 'nothing under this prefix', { place: { file: uri } });
    }
    let head;
    try {
      head = await client.send(new (s3Sdk().HeadObjectCommand)({ Bucket: bucket, Key: key }), { abortSignal: signal });
    } catch (err) {
      throw unreadable(uri, err, signal);
    }
    // Stored with a Content-Encoding (gzip), the object may be served decoded (GCS's decompressive
    // transcoding: https://cloud.google.com/storage/docs/transcoding) while the HEAD says the
    // stored length: what is read is measured instead.
    const encoded = head.ContentEncoding !== undefined && !/^\s*(identity)?\s*$/i.test(head.ContentEncoding);
    const length = encoded ? undefined : head.ContentLength;
    const input = new S3Input({ uri, client, blobs, bucket, key, size: length ?? -1, etag: head.ETag, signal });
    if (length === undefined) await input.measure();
    return input;
  }

  /**
   * Learns the length the HEAD did not give from a ranged GET of the first bytes (kept for
   * detect): Content-Range says the whole length; 416 says there is no first byte (an empty
   * object); a store that ignores Range sends it all, counted as it goes by.
   */
  private async measure(): Promise<void> {
    let res;
    try {
      res = await this.client.send(this.getCommand(`bytes=0-${MEASURE_BYTES - 1}`), { abortSignal: this.signal });
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 416) throw this.readFailure(err);
      this.length = 0;
      return;
    }
    const body = this.sameVersion(res);
    const total = /\/(\d+)$/.exec(res.ContentRange ?? '')?.[1];
    // No more than the range says is there (s3rver sends `bytes 0-0/0` and no byte for an empty object).
    const want = Math.min(MEASURE_BYTES, total !== undefined ? Number(total) : MEASURE_BYTES);
    const counting = total === undefined && res.ContentLength === undefined;
    const pieces: Buffer[] = [];
    let kept = 0;
    let bytes = 0;
    try {
      if (want > 0) {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          bytes += chunk.length;
          if (kept < want) {
            pieces.push(chunk.subarray(0, want - kept));
            kept += Math.min(chunk.length, want - kept);
          }
          if (kept >= want && !counting) break;
        }
      }
    } catch (err) {
      throw unreadable(this.uri, err, this.signal);
    } finally {
      body.destroy();
    }
    this.length = total !== undefined ? Number(total) : (res.ContentLength ?? bytes);
    this.head = Buffer.concat(pieces);
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
          const counted = hashing(hash);
          await pipeline(await this.get(), counted, createWriteStream(path));
          // Its size is what was read (a store that decodes what it serves sends other than its HEAD said).
          this.length = counted.bytes;
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

  /** A GET of the version the HEAD found (If-Match on its ETag). */
  private getCommand(Range?: string) {
    return new (s3Sdk().GetObjectCommand)({ Bucket: this.bucket, Key: this.key, ...(Range ? { Range } : {}), ...(this.etag !== undefined ? { IfMatch: ifMatch(this.etag) } : {}) });
  }

  private async get(Range?: string): Promise<Readable> {
    let res;
    try {
      res = await this.client.send(this.getCommand(Range), { abortSignal: this.signal });
    } catch (err) {
      throw this.readFailure(err);
    }
    return this.sameVersion(res);
  }

  /** The body, when it is of the version the HEAD found (a store that ignores If-Match says which it sent). */
  private sameVersion(res: { Body?: unknown; ETag?: string }): Readable {
    const body = res.Body as Readable;
    if (this.etag !== undefined && res.ETag !== undefined && !sameETag(res.ETag, this.etag)) {
      body.destroy();
      throw this.changed(`its ETag was ${this.etag}, now ${res.ETag}`);
    }
    return body;
  }

  private readFailure(err: unknown): DocbatchError {
    if (preconditionFailed(err)) return this.changed(`the store has no version with ETag ${this.etag} any more: If-Match failed`, err);
    return unreadable(this.uri, err, this.signal);
  }

  private changed(why: string, cause?: unknown): InputError {
    return new InputError('FILE_CHANGED', `the object was replaced while it was being read (${why}); enqueue it again once it is complete`, { ...(cause ? { cause } : {}), place: { file: this.uri } });
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
        if (attempt >= 3 || this.signal?.aborted) throw unreadable(this.uri, err, this.signal);
      }
    }
  }
}

/** sha256 of an object, streamed (null when there is no such object; FILE_UNREADABLE when it cannot be read). */
export async function hashObject(uri: string, client: S3Client): Promise<string | null> {
  let bucket: string;
  let key: string;
  try {
    ({ bucket, key } = parseS3Object(uri, 'input'));
  } catch {
    return null;
  }
  try {
    const res = await client.send(new (s3Sdk().GetObjectCommand)({ Bucket: bucket, Key: key }));
    const hash = createHash('sha256');
    for await (const chunk of res.Body as Readable) hash.update(chunk as Buffer);
    return hash.digest('hex');
  } catch (err) {
    // Not there: no document of it. Not readable (denied, another region, no answer): said so,
    // not taken for "no document found".
    if (classifyS3Error(err) === 'missing-key') return null;
    throw unreadable(uri, err);
  }
}

function hashing(hash: ReturnType<typeof createHash>): Transform & { bytes: number } {
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      (t as Transform & { bytes: number }).bytes += chunk.length;
      done(null, chunk);
    },
  }) as Transform & { bytes: number };
  t.bytes = 0;
  return t;
}

/** A failed request: FILE_UNREADABLE with the store's reason, or ABORTED when the producer was stopped. */
function unreadable(uri: string, err: unknown, signal?: AbortSignal): DocbatchError {
  if (err instanceof DocbatchError) return err;
  if (signal?.aborted) return new DocbatchError('ABORTED', `reading ${uri} was aborted`, { cause: signal.reason ?? err });
  return new InputError('FILE_UNREADABLE', explainS3Error(err, 'cannot read the object').replace(/^cannot read the object: /, ''), { cause: err, place: { file: uri } });
}
