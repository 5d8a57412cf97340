/**
 * The content-addressed store that producers write inputs into and workers on any machine read
 * by hash: `<sha[0:2]>/<sha>` blobs (inputs, chat sidecars, chunk indexes, tasks), named objects
 * under `named/` (results archives of written documents), and the marker `.docbatch-store`
 * written with the first blob. Two implementations, chosen from BLOB_DIR (src/store/storage.ts):
 *
 *   LocalBlobStore (blobs-local.ts)  a folder, shared by every machine (a shared filesystem)
 *   S3BlobStore    (blobs-s3.ts)     `s3://bucket/prefix`: nothing shared but the object store;
 *                                    renderers get blobs through a bounded local cache
 *
 * Both keep the same promises: a blob appears whole or not at all and is never rewritten; a named
 * object is replaced whole, and is written and read as a stream of pieces, never as one string or
 * Buffer of its size (a results archive may be larger than V8's longest string, ~512 MiB); a read
 * gives one version of it, whole, or fails. Whose fault is a failed read is the same too: a store that cannot be
 * read here (a folder not mounted, EIO; a bucket missing, credentials refused, no answer) is the
 * reading process's environment (BLOB_STORE_UNAVAILABLE: a worker hands its unit back and stops
 * taking work); a blob missing from a store that answers is the unit's (BLOB_MISSING).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { DocbatchError } from '../errors.ts';

export interface BlobRef {
  sha256: string;
  size: number;
  /** Where the blob is, for people: a path, or an s3:// URI. */
  location: string;
}

/** A blob as a listing sees it (gc). */
export interface BlobEntry {
  sha256: string;
  size: number;
  /** When it was stored (mtime, LastModified). */
  modifiedMs: number;
}

export const STORE_MARKER = '.docbatch-store';

export interface ReadOptions {
  /**
   * Ends the read, and any wait for a blob the store does not show yet, as soon as it aborts
   * (job cancelled, lock lost, shutdown): ABORTED. A download others wait for too goes on for them.
   */
  signal?: AbortSignal;
}

/** ABORTED, saying what was stopped. */
export function readAborted(signal: AbortSignal, what: string): DocbatchError {
  return new DocbatchError('ABORTED', `aborted while reading ${what}`, { cause: signal.reason });
}

/**
 * Keeps gc off a blob a producer is about to name in a record (src/store/blob-pins.ts). A store
 * given one calls `pin` in put, putBytes and adopt before it looks the blob up.
 */
export interface BlobGuard {
  /** Returns once gc will leave the blob alone (waiting while gc is deleting it). */
  pin(sha256: string): Promise<void>;
}

export interface BlobStore {
  /** BLOB_DIR as given: a folder or an s3:// URI (for messages and logs). */
  readonly location: string;
  /** True for a store reached over the network (s3://): its medium is checked at start. */
  readonly remote: boolean;

  /**
   * Throws BLOB_STORE_UNAVAILABLE unless the store's medium can be used from here: the folder
   * exists on this machine; the bucket exists and the credentials are accepted. Says nothing of
   * whether anything was ever stored in it (that is `check`).
   */
  reach(): Promise<void>;
  /** Throws BLOB_STORE_UNAVAILABLE unless the store answers here and holds the producers' marker. */
  check(): Promise<void>;
  /** Writes the marker (producers, before their first blob). */
  markStore(): Promise<void>;
  /**
   * `err`, met while storing, as BLOB_STORE_UNWRITABLE when it is a write into this store's local
   * folder that failed (BLOB_DIR; on s3://, the temporaries in CACHE_DIR: full, no permission,
   * read-only), naming the folder and what to do; null when it is not the store's
   * (src/store/write-problem.ts).
   */
  writeProblem(err: unknown): DocbatchError | null;

  has(sha256: string): Promise<boolean>;
  /** A local temporary path, to be filled and then `adopt`ed (removed by adopt either way). */
  tempPath(label: string): Promise<string>;
  /** Stores the file at `source` (hashing it). Returns the blob (existing or new). With a guard, pinned first. */
  put(source: string): Promise<BlobRef>;
  /** Stores bytes (a task, a chunk index). */
  putBytes(bytes: Buffer | string): Promise<BlobRef>;
  /** Stores a finished temporary file already hashed, and removes the temporary. */
  adopt(tmp: string, sha256: string, size?: number): Promise<BlobRef>;

  /** `length` bytes at `offset` of a blob (S3: one ranged GET). */
  read(sha256: string, offset: number, length: number, options?: ReadOptions): Promise<Buffer>;
  readAll(sha256: string, options?: ReadOptions): Promise<Buffer>;
  /** A path to the blob on this machine (renderers open it by path; S3: the local cache). */
  localPath(sha256: string, options?: ReadOptions): Promise<string>;

  /**
   * Writes a named object whole, from its pieces in order (never all of it in memory): it
   * replaces the object only once every piece is in; a source that fails part-way leaves the
   * object as it was (a folder: a temporary renamed over it; S3: one PUT, or a multipart
   * upload aborted on failure).
   */
  putNamed(key: string, body: NamedBody): Promise<void>;
  /**
   * A named object's bytes as a stream, or null when there is none. The stream holds one version
   * of the object: a folder reads the file it opened (a replacement renamed over it is not seen);
   * S3 resumes a body cut off mid-way only from the same version (If-Match on its ETag), else the
   * stream fails with NamedObjectChanged: read it again from the start.
   */
  openNamed(key: string): Promise<Readable | null>;
  /** A small named object whole, or null (tools and tests; an archive is read with `openNamed`). */
  getNamed(key: string): Promise<Buffer | null>;
  deleteNamed(key: string): Promise<void>;
  /** Keys of named objects under `prefix` (e.g. `results/`), in no particular order. */
  namedKeys(prefix: string): AsyncIterable<string>;

  /** Every blob in the store (gc). */
  blobs(): AsyncIterable<BlobEntry>;
  deleteBlob(sha256: string): Promise<void>;
  /** Removes temporaries of crashed producers older than `olderThanMs`; returns how many (would go). */
  sweepTemporaries(olderThanMs: number, options?: { now?: number; dryRun?: boolean }): Promise<number>;
}

/** A named object's content: bytes, or pieces to write in order (an archive, line by line). */
export type NamedBody = Buffer | string | AsyncIterable<Buffer | string>;

/**
 * A named object was replaced while it was being read (its ETag changed between the GET that
 * began the read and the one resuming it): what was read is not one version. Read it again.
 */
export class NamedObjectChanged extends Error {
  readonly key: string;
  constructor(key: string, options: { cause?: unknown } = {}) {
    super(`${key} was replaced while it was being read`, options);
    this.name = 'NamedObjectChanged';
    this.key = key;
  }
}

/** The pieces of a named object's body, as Buffers. */
export async function* namedPieces(body: NamedBody): AsyncGenerator<Buffer> {
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    yield typeof body === 'string' ? Buffer.from(body) : body;
    return;
  }
  for await (const piece of body) yield typeof piece === 'string' ? Buffer.from(piece) : piece;
}

/** A byte stream of `pieces` (read on demand: backpressure holds the source). */
export function namedStream(pieces: AsyncIterable<Buffer>): Readable {
  return Readable.from(pieces, { objectMode: false });
}

/** A blob id is 64 lowercase hex digits; anything else cannot name a blob (BLOB_MISSING). */
export function assertBlobId(sha256: string): void {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new DocbatchError('BLOB_MISSING', `not a blob id: ${JSON.stringify(sha256)}`);
}

/** A named-object key: `/`-separated parts of [A-Za-z0-9._-], none empty, `.` or `..`. */
export function assertNamedKey(key: string): void {
  if (!isNamedKey(key)) throw new TypeError(`not a named-object key: ${JSON.stringify(key)}`);
}

/** A key docbatch could have written under `named/`: safe characters, no empty, `.` or `..` part. */
export function isNamedKey(key: string): boolean {
  return /^[A-Za-z0-9._/-]+$/.test(key) && !key.split('/').some((p) => p === '' || p === '.' || p === '..');
}

/** sha256 of a file, streamed. */
export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
