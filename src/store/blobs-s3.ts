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
 *
 * The requests themselves (uploads whole, GETs that survive a cut-off body or a blob shown late,
 * what a failure means) are s3-objects.ts's; this module decides which key holds what.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { s3Sdk } from './aws.ts';
import { DocbatchError } from '../errors.ts';
import type { BlobCache } from './blob-cache.ts';
import { storeWriteProblem } from './write-problem.ts';
import { assertBlobId, assertNamedKey, hashFile, isNamedKey, namedPieces, namedStream, STORE_MARKER, type BlobEntry, type BlobGuard, type BlobRef, type BlobStore, type NamedBody, type ReadOptions } from './blobs.ts';
import { classifyS3Error, explainS3Error, formatLocation, keyUnder, type S3Location } from './s3.ts';
import { collect, S3Objects } from './s3-objects.ts';

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

export class S3BlobStore implements BlobStore {
  readonly location: string;
  readonly remote = true;
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  /** The requests to the bucket, and what their failures mean (s3-objects.ts). */
  private readonly objects: S3Objects;
  private readonly cache: BlobCache;
  private readonly guard: BlobGuard | undefined;
  private marked = false;

  constructor(parts: S3BlobStoreParts) {
    this.client = parts.client;
    this.bucket = parts.location.bucket;
    this.prefix = parts.location.prefix;
    this.location = formatLocation(parts.location);
    this.cache = parts.cache;
    this.objects = new S3Objects({
      client: parts.client,
      bucket: this.bucket,
      prefix: this.prefix,
      location: this.location,
      partSize: Math.max(5 * 1024 * 1024, parts.partSizeBytes ?? 16 * 1024 * 1024),
    });
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
    return this.objects.uri(key);
  }

  reach(): Promise<void> {
    return this.objects.reach();
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
      if (classifyS3Error(err) !== 'missing-key') throw this.objects.unavailable(err, 'cannot mark the store');
      try {
        await this.client.send(new (s3Sdk().PutObjectCommand)({ Bucket: this.bucket, Key, Body: 'docbatch blob store\n' }));
      } catch (e) {
        throw this.objects.unavailable(e, 'cannot mark the store');
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
      throw this.objects.unavailable(err, `cannot look up blob ${sha256.slice(0, 12)}`);
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
    if (!(await this.has(sha256))) await this.objects.upload(this.keyOf(sha256), () => createReadStream(source), size);
    return { sha256, size, location: this.uri(this.keyOf(sha256)) };
  }

  async putBytes(bytes: Buffer | string): Promise<BlobRef> {
    await this.markStore();
    const buf = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
    const sha256 = createHash('sha256').update(buf).digest('hex');
    await this.guard?.pin(sha256);
    if (!(await this.has(sha256))) await this.objects.upload(this.keyOf(sha256), () => buf, buf.length);
    return { sha256, size: buf.length, location: this.uri(this.keyOf(sha256)) };
  }

  async adopt(tmp: string, sha256: string, size?: number): Promise<BlobRef> {
    try {
      await this.markStore();
      const bytes = size ?? (await stat(tmp)).size;
      await this.guard?.pin(sha256);
      if (!(await this.has(sha256))) await this.objects.upload(this.keyOf(sha256), () => createReadStream(tmp), bytes);
      return { sha256, size: bytes, location: this.uri(this.keyOf(sha256)) };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async read(sha256: string, offset: number, length: number, options: ReadOptions = {}): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const buf = await this.objects.getBytes(this.keyOf(sha256), `bytes=${offset}-${offset + length - 1}`, sha256, options.signal);
    if (buf.length !== length) throw new DocbatchError('BLOB_MISSING', `blob ${sha256.slice(0, 12)} is shorter than expected (${offset}+${length})`);
    return buf;
  }

  readAll(sha256: string, options: ReadOptions = {}): Promise<Buffer> {
    return this.objects.getBytes(this.keyOf(sha256), undefined, sha256, options.signal);
  }

  /**
   * The blob in the local cache. Callers asking for one blob at once share one download, which
   * `signal` does not end while another caller still waits for it (the one that aborted leaves).
   */
  localPath(sha256: string, options: ReadOptions = {}): Promise<string> {
    const Key = this.keyOf(sha256);
    return this.cache.get(sha256, async (tmp, signal) => {
      let hash = createHash('sha256');
      await this.objects.withBody(Key, undefined, sha256, signal, async (body) => {
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
    for (; !next.done && bytes + next.value.length <= this.objects.partSize; next = await pieces.next()) {
      head.push(next.value);
      bytes += next.value.length;
    }
    if (next.done) {
      const buf = Buffer.concat(head);
      await this.objects.upload(Key, () => buf, buf.length);
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
      await this.objects.upload(Key, () => namedStream(stream()), Number.POSITIVE_INFINITY);
    } catch (err) {
      // The upload is aborted either way; a source that failed is the error to report, not the store.
      throw source.failed ? source.error : err;
    }
  }

  /**
   * A named object as a stream, or null. One version: a body cut off mid-way is resumed from the
   * same version, and an object replaced meanwhile fails the stream with NamedObjectChanged
   * (S3Objects.openVersion).
   */
  async openNamed(key: string): Promise<Readable | null> {
    const body = await this.objects.openVersion(key, this.namedKey(key));
    return body === null ? null : namedStream(body);
  }

  /** A small named object whole, or null when there is none. */
  async getNamed(key: string): Promise<Buffer | null> {
    const stream = await this.openNamed(key);
    return stream ? collect(stream) : null;
  }

  async deleteNamed(key: string): Promise<void> {
    await this.objects.delete(this.namedKey(key));
  }

  async *namedKeys(prefix: string): AsyncIterable<string> {
    const root = keyUnder(this.prefix, 'named/');
    for await (const object of this.objects.list(`${root}${prefix}`)) {
      const key = object.key.slice(root.length);
      // Only keys docbatch writes: a folder marker (`results/`, made by consoles, s3fs, rclone) or
      // a key with a space is someone else's, and neither gc nor a reader may trip on it.
      if (isNamedKey(key)) yield key;
    }
  }

  async *blobs(): AsyncIterable<BlobEntry> {
    const root = this.prefix === '' ? '' : `${this.prefix}/`;
    for await (const object of this.objects.list(root)) {
      const rel = object.key.slice(root.length);
      const m = BLOB_KEY.exec(rel);
      if (!m || rel.length !== 67 || m[2]!.slice(0, 2) !== m[1]) continue;
      yield { sha256: m[2]!, size: object.size, modifiedMs: object.modifiedMs };
    }
  }

  deleteBlob(sha256: string): Promise<void> {
    return this.objects.delete(this.keyOf(sha256));
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
}
