/**
 * The blob store in a folder (BLOB_DIR a path): `<dir>/<sha[0:2]>/<sha>`, named objects under
 * `<dir>/named/`, temporaries under `<dir>/tmp/`, the marker `<dir>/.docbatch-store`. Shared by
 * every machine through a shared filesystem. A blob appears whole or not at all (written to a
 * temporary name in the same folder, fsynced, renamed), and an existing blob is never rewritten.
 *
 * Whose fault is a failed read (src/store/blobs.ts): a folder that is itself unreadable (missing
 * or not mounted on this machine, EMFILE, ESTALE, EIO) is BLOB_STORE_UNAVAILABLE; a blob missing
 * from a folder that answers and holds the marker is BLOB_MISSING.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { access, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DocbatchError } from '../errors.ts';
import { storeWriteProblem } from './write-problem.ts';
import { assertBlobId, assertNamedKey, isNamedKey, namedPieces, namedStream, readAborted, STORE_MARKER, type BlobEntry, type BlobGuard, type BlobRef, type BlobStore, type NamedBody, type ReadOptions } from './blobs.ts';

/** errno codes that say the store itself (not one blob) cannot be read here. */
const ENVIRONMENT_ERRNOS = new Set(['EMFILE', 'ENFILE', 'ESTALE', 'EIO', 'EACCES', 'EPERM', 'ENOTCONN', 'ENXIO', 'EHOSTDOWN', 'ETIMEDOUT']);

export class LocalBlobStore implements BlobStore {
  readonly dir: string;
  readonly remote = false;
  private readonly guard: BlobGuard | undefined;

  /** `guard`: producers' stores pin each blob before looking it up (src/store/blob-pins.ts). */
  constructor(dir: string, options: { guard?: BlobGuard } = {}) {
    this.dir = dir;
    this.guard = options.guard;
  }

  get location(): string {
    return this.dir;
  }

  pathOf(sha256: string): string {
    assertBlobId(sha256);
    return join(this.dir, sha256.slice(0, 2), sha256);
  }

  /** The folder exists on this machine (a missing one is a store not mounted here). */
  async reach(): Promise<void> {
    try {
      await access(this.dir);
    } catch (err) {
      throw new DocbatchError('BLOB_STORE_UNAVAILABLE', `BLOB_DIR ${this.dir} does not exist on this machine: mount the store the producers write to there (or enqueue something first on a single machine)`, { cause: err });
    }
  }

  async has(sha256: string): Promise<boolean> {
    try {
      await access(this.pathOf(sha256));
      return true;
    } catch {
      return false;
    }
  }

  /** Throws BLOB_STORE_UNAVAILABLE unless the store answers here (its folder and marker are readable). */
  async check(): Promise<void> {
    try {
      await access(join(this.dir, STORE_MARKER), constants.R_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? `${this.dir} has no ${STORE_MARKER} (not the producer's BLOB_DIR, not mounted here, or nothing was ever enqueued into it)` : `${this.dir}: ${(err as Error).message}`;
      throw new DocbatchError('BLOB_STORE_UNAVAILABLE', `blob store unreadable: ${why}`, { cause: err });
    }
  }

  /** Writes the marker (producers, before their first blob). */
  async markStore(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const marker = join(this.dir, STORE_MARKER);
    try {
      await access(marker);
    } catch {
      await writeFile(marker, 'docbatch blob store\n');
    }
  }

  writeProblem(err: unknown): DocbatchError | null {
    return storeWriteProblem(err, this.dir, 'BLOB_DIR', this.dir);
  }

  /** A temporary path inside the store (same filesystem, so a rename is atomic). */
  async tempPath(label: string): Promise<string> {
    const tmp = join(this.dir, 'tmp');
    await mkdir(tmp, { recursive: true });
    return join(tmp, `${label}.${process.pid}.${randomBytes(6).toString('hex')}`);
  }

  /** Copies `source` in, hashing while copying. Returns the blob (existing or new). */
  async put(source: string): Promise<BlobRef> {
    await this.markStore();
    const tmp = await this.tempPath('put');
    const hash = createHash('sha256');
    let size = 0;
    try {
      await pipeline(
        createReadStream(source),
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            hash.update(chunk);
            size += chunk.length;
            yield chunk;
          }
        },
        createWriteStream(tmp),
      );
      return await this.adopt(tmp, hash.digest('hex'), size);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Stores bytes (a task, a chunk index). */
  async putBytes(bytes: Buffer | string): Promise<BlobRef> {
    await this.markStore();
    const buf = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
    const sha256 = createHash('sha256').update(buf).digest('hex');
    await this.guard?.pin(sha256);
    if (await this.has(sha256)) return { sha256, size: buf.length, location: this.pathOf(sha256) };
    const tmp = await this.tempPath('bytes');
    try {
      await writeFile(tmp, buf);
      return await this.adopt(tmp, sha256, buf.length);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Moves a finished temporary file (already hashed) into the store under its hash. */
  async adopt(tmp: string, sha256: string, size?: number): Promise<BlobRef> {
    await this.markStore();
    const path = this.pathOf(sha256);
    await this.guard?.pin(sha256);
    if (await this.has(sha256)) {
      await rm(tmp, { force: true });
    } else {
      await fsyncFile(tmp);
      await mkdir(join(this.dir, sha256.slice(0, 2)), { recursive: true });
      await rename(tmp, path);
    }
    return { sha256, size: size ?? (await stat(path)).size, location: path };
  }

  /** Reads `length` bytes at `offset` of a blob. */
  async read(sha256: string, offset: number, length: number, options: ReadOptions = {}): Promise<Buffer> {
    if (options.signal?.aborted) throw readAborted(options.signal, `blob ${sha256.slice(0, 12)}`);
    const path = this.pathOf(sha256);
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      throw await this.readError(sha256, err);
    }
    try {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      if (bytesRead !== length) throw new DocbatchError('BLOB_MISSING', `blob ${sha256.slice(0, 12)} is shorter than expected (${offset}+${length})`);
      return buffer;
    } catch (err) {
      if (err instanceof DocbatchError) throw err;
      throw await this.readError(sha256, err);
    } finally {
      await handle.close();
    }
  }

  async readAll(sha256: string, options: ReadOptions = {}): Promise<Buffer> {
    if (options.signal?.aborted) throw readAborted(options.signal, `blob ${sha256.slice(0, 12)}`);
    try {
      return await readFile(this.pathOf(sha256));
    } catch (err) {
      if (err instanceof DocbatchError) throw err;
      throw await this.readError(sha256, err);
    }
  }

  /** A path to the blob on this machine (renderers open it by path). */
  async localPath(sha256: string, options: ReadOptions = {}): Promise<string> {
    if (options.signal?.aborted) throw readAborted(options.signal, `blob ${sha256.slice(0, 12)}`);
    const path = this.pathOf(sha256);
    try {
      await access(path, constants.R_OK);
      return path;
    } catch (err) {
      throw await this.readError(sha256, err);
    }
  }

  /**
   * Writes a named object whole, piece by piece (temporary name, fsync, rename, fsync of the
   * folder): a source that fails part-way leaves the object as it was and no temporary.
   */
  async putNamed(key: string, body: NamedBody): Promise<void> {
    const path = this.namedPath(key);
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await pipeline(namedStream(namedPieces(body)), createWriteStream(tmp, { flags: 'wx' }));
      await fsyncFile(tmp);
      await rename(tmp, path);
      await fsyncFile(dirname(path)).catch(() => {}); // the rename, durable (best effort: not every filesystem syncs folders)
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** A named object's bytes as a stream of the file opened (a replacement renamed over it meanwhile is not seen), or null. */
  async openNamed(key: string): Promise<Readable | null> {
    let handle;
    try {
      handle = await open(this.namedPath(key), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        await this.check();
        return null;
      }
      throw new DocbatchError('BLOB_STORE_UNAVAILABLE', `cannot read ${key} from the blob store: ${(err as Error).message}`, { cause: err });
    }
    const file = handle.createReadStream();
    return namedStream(
      (async function* () {
        try {
          for await (const chunk of file) yield chunk as Buffer;
        } catch (err) {
          throw new DocbatchError('BLOB_STORE_UNAVAILABLE', `cannot read ${key} from the blob store: ${(err as Error).message}`, { cause: err });
        } finally {
          file.destroy();
        }
      })(),
    );
  }

  /** A small named object whole, or null when there is none. */
  async getNamed(key: string): Promise<Buffer | null> {
    const stream = await this.openNamed(key);
    if (!stream) return null;
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** Removes a named object, and its folders left empty (up to `named/`). */
  async deleteNamed(key: string): Promise<void> {
    const path = this.namedPath(key);
    await rm(path, { force: true });
    const root = join(this.dir, 'named');
    for (let dir = dirname(path); dir.startsWith(`${root}/`); dir = dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        break; // not empty, or gone
      }
    }
  }

  async *namedKeys(prefix: string): AsyncIterable<string> {
    const root = join(this.dir, 'named');
    const walk = async function* (dir: string, rel: string, depth: number): AsyncGenerator<string> {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const key = rel === '' ? entry.name : `${rel}/${entry.name}`;
        if (entry.isDirectory() && depth < 16) yield* walk(join(dir, entry.name), key, depth + 1);
        else if (entry.isFile() && !entry.name.includes('.tmp-')) yield key;
      }
    };
    // Walk only the folder the prefix names (`results/` → named/results).
    const folder = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    for await (const key of walk(folder === '' ? root : join(root, folder), folder, 0)) {
      // Only keys docbatch writes: a stray `x y.jsonl` someone left there is not ours to read or collect.
      if (key.startsWith(prefix) && isNamedKey(key)) yield key;
    }
  }

  async *blobs(): AsyncIterable<BlobEntry> {
    for (const shard of await list(this.dir)) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue;
      for (const name of await list(join(this.dir, shard))) {
        if (!/^[0-9a-f]{64}$/.test(name) || name.slice(0, 2) !== shard) continue;
        const info = await stat(join(this.dir, shard, name)).catch(() => null);
        if (info) yield { sha256: name, size: info.size, modifiedMs: info.mtimeMs };
      }
    }
  }

  async deleteBlob(sha256: string): Promise<void> {
    await rm(this.pathOf(sha256), { force: true });
  }

  async sweepTemporaries(olderThanMs: number, options: { now?: number; dryRun?: boolean } = {}): Promise<number> {
    const now = options.now ?? Date.now();
    let removed = 0;
    for (const name of await list(join(this.dir, 'tmp'))) {
      const path = join(this.dir, 'tmp', name);
      const info = await stat(path).catch(() => null);
      if (!info || now - info.mtimeMs < olderThanMs) continue;
      removed++;
      if (!options.dryRun) await rm(path, { force: true });
    }
    return removed;
  }

  private namedPath(key: string): string {
    assertNamedKey(key);
    return join(this.dir, 'named', key);
  }

  /** Classifies a failed read: the store's fault (environment) or the blob's (missing). */
  private async readError(sha256: string, err: unknown): Promise<DocbatchError> {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (ENVIRONMENT_ERRNOS.has(code)) {
      return new DocbatchError('BLOB_STORE_UNAVAILABLE', `cannot read blob ${sha256.slice(0, 12)} (${code}): ${(err as Error).message}`, { cause: err });
    }
    try {
      await this.check();
    } catch (unavailable) {
      return unavailable as DocbatchError;
    }
    return new DocbatchError('BLOB_MISSING', `blob ${sha256.slice(0, 12)} is not in ${this.dir} although the store answers (deleted or collected?)`, { cause: err });
  }
}

async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}
