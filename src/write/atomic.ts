/**
 * Files appear whole or not at all: written under a temporary name in the same directory,
 * fsynced, renamed over the final name, and the directory fsynced so the rename survives a
 * crash. A writer killed mid-write leaves only a `.tmp-*` file, never a partial output.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { finished } from 'node:stream/promises';

export interface AtomicWriter {
  write(chunk: string): Promise<void>;
  /** Flushes, fsyncs and renames into place. */
  commit(): Promise<void>;
  /** Removes the temporary file. Safe after commit (does nothing). */
  abort(): Promise<void>;
}

export async function openAtomic(path: string): Promise<AtomicWriter> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const stream = createWriteStream(tmp, { flags: 'wx' });
  let done = false;
  return {
    async write(chunk) {
      if (!stream.write(chunk)) await new Promise<void>((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        stream.once('error', onError);
        stream.once('drain', () => {
          stream.off('error', onError);
          resolve();
        });
      });
    },
    async commit() {
      stream.end();
      await finished(stream);
      const handle = await open(tmp, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, path);
      done = true;
      await syncDir(dir);
    },
    async abort() {
      if (done) return;
      stream.destroy();
      await rm(tmp, { force: true });
    },
  };
}

export async function writeFileAtomic(path: string, content: string): Promise<void> {
  const writer = await openAtomic(path);
  try {
    await writer.write(content);
    await writer.commit();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some filesystems refuse to fsync a directory; the rename is still atomic.
  }
}
