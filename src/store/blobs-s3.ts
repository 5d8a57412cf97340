/**
 * The blob store in object storage (BLOB_DIR `s3://bucket/prefix`): blob `<prefix>/<sha[0:2]>/<sha>`,
 * named objects `<prefix>/named/<key>`, the marker `<prefix>/.docbatch-store`. Nothing is shared
 * between machines but the bucket.
 *
 *   writes     a blob is uploaded once (a HEAD first: content-addressed, never rewritten), whole:
 *              one PUT, or a multipart upload above S3_PART_SIZE_MB that S3 makes visible only
 *              when complete
 *   reads      `read` is one ranged GET; `localPath` downloads into the local BlobCache (bounded,
 *              LRU) and checks the bytes against the blob's sha256
 *   temporary  files (`tempPath`: a chat export's sidecar being written) live in the cache's
 *              tmp/ on this machine, never in the bucket
 *   faults     a bucket missing, credentials refused, a store that does not answer (after the
 *              SDK's retries): BLOB_STORE_UNAVAILABLE; NoSuchKey while the bucket answers:
 *              BLOB_MISSING (src/store/blobs.ts)
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { s3Sdk, s3Storage } from './aws.ts';
import { DocbatchError } from '../errors.ts';
import { sleep } from '../timeouts.ts';
import type { BlobCache } from './blob-cache.ts';
import { ifMatch, sameETag } from './etag.ts';
import { storeWriteProblem } from './write-problem.ts';
import { assertBlobId, assertNamedKey, hashFile, isNamedKey, NamedObjectChanged, namedPieces, namedStream, readAborted, STORE_MARKER, type BlobEntry, type BlobGuard, type BlobRef, type BlobStore, type NamedBody, type ReadOptions } from './blobs.ts';
import { classifyS3Error, explainS3Error, formatLocation, keyUnder, listObjects, preconditionFailed, reachBucket, s3Uri, type S3Location } from './s3.ts';

export interface S3BlobStoreParts {
  client: S3Client;
  location: S3Location;
  cache: BlobCache;
  /** Objects above this are uploaded in parts of this size. @defaultValue 16 MiB */
  partSizeBytes?: number;
  /** Producers' stores pin each blob before looking it up (src/store/blob-pins.ts). */
  guard?: BlobGuard;
}

const BLOB_KEY = /(?:^|\/)([0-9a-f]{2})\/([0-9a-f]{64})$/;

/** Waits before a blob that is not there yet counts as missing (about 5 s in all). */
const BLOB_VISIBLE_DELAYS_MS = [250, 1000, 3500];

export class S3BlobStore implements BlobStore {
  readonly location: string;
  readonly remote = true;
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly cache: BlobCache;
  private readonly partSize: number;
  private readonly guard: BlobGuard | undefined;
  private marked = false;

  constructor(parts: S3BlobStoreParts) {
    this.client = parts.client;
    this.bucket = parts.location.bucket;
    this.prefix = parts.location.prefix;
    this.location = formatLocation(parts.location);
    this.cache = parts.cache;
    this.partSize = Math.max(5 * 1024 * 1024, parts.partSizeBytes ?? 16 * 1024 * 1024);
    this.guard = parts.guard;
  }

  keyOf(sha256: string): string {
    assertBlobId(sha256);
    return keyUnder(this.prefix, `${sha256.slice(0, 2)}/${sha256}`);
  }

  private namedKey(key: string): string {
    assertNamedKey(key);
    return keyUnder(this.prefix, `named/${key}`);
  }

  private uri(key: string): string {
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

  async check(): Promise<void> {
    await this.reach();
    try {
      await this.client.send(new (s3Sdk().HeadObjectCommand)({ Bucket: this.bucket, Key: keyUnder(this.prefix, STORE_MARKER) }));
    } catch (err) {
      const why = classifyS3Error(err) === 'missing-key' ? `${this.location} has no ${STORE_MARKER} (not the producers' BLOB_DIR, or nothing was ever enqueued into it)` : explainS3Error(err, this.location);
      throw new DocbatchError('BLOB_STORE_UNAVAILABLE', `blob store unreadable: ${why}`, { cause: err });
    }
  }

  async markStore(): Promise<void> {
    if (this.marked) return;
    const Key = keyUnder(this.prefix, STORE_MARKER);
    try {
      await this.client.send(new (s3Sdk().HeadObjectCommand)({ Bucket: this.bucket, Key }));
    } catch (err) {
      if (classifyS3Error(err) !== 'missing-key') throw this.unavailable(err, 'cannot mark the store');
      try {
        await this.client.send(new (s3Sdk().PutObjectCommand)({ Bucket: this.bucket, Key, Body: 'docbatch blob store\n' }));
      } catch (e) {
        throw this.unavailable(e, 'cannot mark the store');
      }
    }
    this.marked = true;
  }

  async has(sha256: string): Promise<boolean> {
    try {
      await this.client.send(new (s3Sdk().HeadObjectCommand)({ Bucket: this.bucket, Key: this.keyOf(sha256) }));
      return true;
    } catch (err) {
      if (err instanceof DocbatchError) throw err;
      if (classifyS3Error(err) === 'missing-key') return false;
      throw this.unavailable(err, `cannot look up blob ${sha256.slice(0, 12)}`);
    }
  }

  writeProblem(err: unknown): DocbatchError | null {
    return storeWriteProblem(err, this.cache.dir, 'CACHE_DIR', `BLOB_DIR ${this.location}`);
  }

  tempPath(label: string): Promise<string> {
    return this.cache.tempPath(label);
  }

  async put(source: string): Promise<BlobRef> {
    await this.markStore();
    const sha256 = await hashFile(source);
    const size = (await stat(source)).size;
    await this.guard?.pin(sha256);
    if (!(await this.has(sha256))) await this.upload(this.keyOf(sha256), () => createReadStream(source), size);
    return { sha256, size, location: this.uri(this.keyOf(sha256)) };
  }

  async putBytes(bytes: Buffer | string): Promise<BlobRef> {
    await this.markStore();
    const buf = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
    const sha256 = createHash('sha256').update(buf).digest('hex');
    await this.guard?.pin(sha256);
    if (!(await this.has(sha256))) await this.upload(this.keyOf(sha256), () => buf, buf.length);
    return { sha256, size: buf.length, location: this.uri(this.keyOf(sha256)) };
  }

  async adopt(tmp: string, sha256: string, size?: number): Promise<BlobRef> {
    try {
      await this.markStore();
      const bytes = size ?? (await stat(tmp)).size;
      await this.guard?.pin(sha256);
      if (!(await this.has(sha256))) await this.upload(this.keyOf(sha256), () => createReadStream(tmp), bytes);
      return { sha256, size: bytes, location: this.uri(this.keyOf(sha256)) };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async read(sha256: string, offset: number, length: number, options: ReadOptions = {}): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const buf = await this.getBytes(this.keyOf(sha256), `bytes=${offset}-${offset + length - 1}`, sha256, options.signal);
    if (buf.length !== length) throw new DocbatchError('BLOB_MISSING', `blob ${sha256.slice(0, 12)} is shorter than expected (${offset}+${length})`);
    return buf;
  }

  readAll(sha256: string, options: ReadOptions = {}): Promise<Buffer> {
    return this.getBytes(this.keyOf(sha256), undefined, sha256, options.signal);
  }

  /**
   * The blob in the local cache. Callers asking for one blob at once share one download, which
   * `signal` does not end while another caller still waits for it (the one that aborted leaves).
   */
  localPath(sha256: string, options: ReadOptions = {}): Promise<string> {
    const Key = this.keyOf(sha256);
    return this.cache.get(sha256, async (tmp, signal) => {
      let hash = createHash('sha256');
      await this.withBody(Key, undefined, sha256, signal, async (body) => {
        // Each attempt hashes what it writes: a body cut off and fetched again starts afresh
        // (the file is truncated too), or the first attempt's bytes would count twice.
        hash = createHash('sha256');
        await pipeline(
          body,
          new Transform({
            transform(chunk: Buffer, _enc, done) {
              hash.update(chunk);
              done(null, chunk);
            },
          }),
          createWriteStream(tmp),
        );
      });
      const got = hash.digest('hex');
      if (got !== sha256) throw new DocbatchError('BLOB_MISSING', `blob ${sha256.slice(0, 12)} in ${this.location} does not hold what its name says (sha256 ${got.slice(0, 12)}): damaged or overwritten`);
    }, options.signal);
  }

  /**
   * A named object from its pieces: one PUT when they end within a part, else a multipart upload
   * fed as they come (S3 shows it only once complete; aborted when the source fails part-way).
   * At most a part is held in memory.
   */
  async putNamed(key: string, body: NamedBody): Promise<void> {
    const Key = this.namedKey(key);
    const pieces = namedPieces(body);
    const head: Buffer[] = [];
    let bytes = 0;
    let next = await pieces.next();
    for (; !next.done && bytes + next.value.length <= this.partSize; next = await pieces.next()) {
      head.push(next.value);
      bytes += next.value.length;
    }
    if (next.done) {
      const buf = Buffer.concat(head);
      await this.upload(Key, () => buf, buf.length);
      return;
    }
    const rest = next.value;
    const source = { failed: false, error: undefined as unknown };
    const stream = async function* () {
      yield* head;
      yield rest;
      try {
        yield* pieces;
      } catch (err) {
        Object.assign(source, { failed: true, error: err });
        throw err;
      }
    };
    try {
      await this.upload(Key, () => namedStream(stream()), Number.POSITIVE_INFINITY);
    } catch (err) {
      // The upload is aborted either way; a source that failed is the error to report, not the store.
      throw source.failed ? source.error : err;
    }
  }

  /**
   * A named object as a stream, or null. One version: the first GET's ETag is kept, and a body
   * cut off mid-way is resumed from where it stopped with If-Match on it (up to 3 times); an
   * object replaced meanwhile (412, or another ETag from a store that ignores If-Match) fails the
   * stream with NamedObjectChanged.
   */
  async openNamed(key: string): Promise<Readable | null> {
    const Key = this.namedKey(key);
    let first;
    try {
      first = await this.client.send(new (s3Sdk().GetObjectCommand)({ Bucket: this.bucket, Key }));
    } catch (err) {
      const failure = await this.readError(this.uri(Key), err);
      if (failure.code === 'BLOB_MISSING') return null;
      throw failure;
    }
    return namedStream(this.resumed(key, Key, first.Body as Readable, first.ETag, first.ContentLength));
  }

  /** The body of a named object, resumed from the same version when cut off (openNamed). */
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

  /** A small named object whole, or null when there is none. */
  async getNamed(key: string): Promise<Buffer | null> {
    const stream = await this.openNamed(key);
    return stream ? collect(stream) : null;
  }

  async deleteNamed(key: string): Promise<void> {
    await this.delete(this.namedKey(key));
  }

  async *namedKeys(prefix: string): AsyncIterable<string> {
    const root = keyUnder(this.prefix, 'named/');
    for await (const object of this.list(`${root}${prefix}`)) {
      const key = object.key.slice(root.length);
      // Only keys docbatch writes: a folder marker (`results/`, made by consoles, s3fs, rclone) or
      // a key with a space is someone else's, and neither gc nor a reader may trip on it.
      if (isNamedKey(key)) yield key;
    }
  }

  async *blobs(): AsyncIterable<BlobEntry> {
    const root = this.prefix === '' ? '' : `${this.prefix}/`;
    for await (const object of this.list(root)) {
      const rel = object.key.slice(root.length);
      const m = BLOB_KEY.exec(rel);
      if (!m || rel.length !== 67 || m[2]!.slice(0, 2) !== m[1]) continue;
      yield { sha256: m[2]!, size: object.size, modifiedMs: object.modifiedMs };
    }
  }

  deleteBlob(sha256: string): Promise<void> {
    return this.delete(this.keyOf(sha256));
  }

  /** Temporaries are local (the cache's tmp/ of this machine), never in the bucket. */
  async sweepTemporaries(olderThanMs: number, options: { now?: number; dryRun?: boolean } = {}): Promise<number> {
    const now = options.now ?? Date.now();
    const dir = join(this.cache.dir, 'tmp');
    let names: string[] = [];
    try {
      names = await readdir(dir);
    } catch {
      return 0;
    }
    let removed = 0;
    for (const name of names) {
      const info = await stat(join(dir, name)).catch(() => null);
      if (!info || now - info.mtimeMs < olderThanMs) continue;
      removed++;
      if (!options.dryRun) await rm(join(dir, name), { force: true });
    }
    return removed;
  }

  /**
   * One object whole: a single PUT, or multipart above the part size (visible only once
   * complete; `size` infinite: a stream of unknown length, known to pass a part).
   */
  private async upload(Key: string, body: () => Readable | Buffer, size: number): Promise<void> {
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

  private async getBytes(Key: string, Range: string | undefined, sha256: string | null, signal: AbortSignal | undefined): Promise<Buffer> {
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
  private async withBody(Key: string, Range: string | undefined, sha256: string | null, signal: AbortSignal | undefined, consume: (body: Readable) => Promise<void>): Promise<void> {
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

  private unavailable(err: unknown, doing: string): DocbatchError {
    if (err instanceof DocbatchError) return err;
    return new DocbatchError('BLOB_STORE_UNAVAILABLE', explainS3Error(err, `${doing} (${this.location})`), { cause: err });
  }

  private async delete(Key: string): Promise<void> {
    try {
      await this.client.send(new (s3Sdk().DeleteObjectCommand)({ Bucket: this.bucket, Key }));
    } catch (err) {
      if (classifyS3Error(err) === 'missing-key') return;
      throw this.unavailable(err, `cannot delete ${this.uri(Key)}`);
    }
  }

  private async *list(prefix: string): AsyncGenerator<{ key: string; size: number; modifiedMs: number }> {
    yield* listObjects(this.client, this.bucket, prefix, (err) => this.unavailable(err, `cannot list ${this.uri(prefix)}`));
  }
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
