/**
 * The content-addressed store in BLOB_DIR: `<dir>/<sha[0:2]>/<sha>`. Producers put inputs (and
 * chat sidecars) here; workers on any machine read them by hash. A blob appears whole or not at
 * all (written to a temporary name, fsynced, renamed), and an existing blob is never rewritten.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { access, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DocbatchError } from '../errors.ts';

export interface BlobRef {
  sha256: string;
  size: number;
  path: string;
}

export class BlobStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  pathOf(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new DocbatchError('BLOB_MISSING', `not a blob id: ${JSON.stringify(sha256)}`);
    return join(this.dir, sha256.slice(0, 2), sha256);
  }

  async has(sha256: string): Promise<boolean> {
    try {
      await access(this.pathOf(sha256));
      return true;
    } catch {
      return false;
    }
  }

  /** A temporary path inside the store (same filesystem, so a rename is atomic). */
  async tempPath(label: string): Promise<string> {
    const tmp = join(this.dir, 'tmp');
    await mkdir(tmp, { recursive: true });
    return join(tmp, `${label}.${process.pid}.${randomBytes(6).toString('hex')}`);
  }

  /** Copies `source` in, hashing while copying. Returns the blob (existing or new). */
  async put(source: string): Promise<BlobRef> {
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

  /** Moves a finished temporary file (already hashed) into the store under its hash. */
  async adopt(tmp: string, sha256: string, size?: number): Promise<BlobRef> {
    const path = this.pathOf(sha256);
    if (await this.has(sha256)) {
      await rm(tmp, { force: true });
    } else {
      const handle = await open(tmp, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await mkdir(join(this.dir, sha256.slice(0, 2)), { recursive: true });
      await rename(tmp, path);
    }
    return { sha256, size: size ?? (await stat(path)).size, path };
  }

  /** Reads `length` bytes at `offset` of a blob. */
  async read(sha256: string, offset: number, length: number): Promise<Buffer> {
    const path = this.pathOf(sha256);
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      throw new DocbatchError('BLOB_MISSING', `blob ${sha256.slice(0, 12)} is not in ${this.dir} (is BLOB_DIR shared with the producer?)`, { cause: err });
    }
    try {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      if (bytesRead !== length) throw new DocbatchError('BLOB_MISSING', `blob ${sha256.slice(0, 12)} is shorter than expected (${offset}+${length})`);
      return buffer;
    } finally {
      await handle.close();
    }
  }

  /** Throws BLOB_MISSING unless the blob is present. */
  async require(sha256: string): Promise<string> {
    if (!(await this.has(sha256))) {
      throw new DocbatchError('BLOB_MISSING', `blob ${sha256.slice(0, 12)} is not in ${this.dir} (is BLOB_DIR shared with the producer?)`);
    }
    return this.pathOf(sha256);
  }
}

/** sha256 of a file, streamed. */
export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
