/**
 * Where outputs go, and how they appear: whole or not at all. Two sinks, chosen from OUT_DIR:
 * LocalSink (here) for a folder, S3Sink (sink-s3.ts) for `s3://bucket/prefix`. The local sink writes under a
 * temporary name in the same directory, fsyncs, renames over the final name, and fsyncs the
 * directory so the rename survives a crash; a writer killed mid-write leaves only a
 * `.name.tmp-*` file, never a partial output. That leftover goes soon after (the killed write's
 * job runs again): a write into a folder removes the folder's temporaries untouched for
 * `leftoverAfterMs` (LOCK_DURATION_MS: their writer lost the job's lock), listing the folder at
 * most once per `leftoverAfterMs` (a listing of 100,000 outputs takes ~0.1 s: not one a write);
 * the writer also sweeps every temporary older than an hour, at start and every hour.
 *
 * Every path is inside the sink's root (OUT_DIR): a relative path that resolves outside it, or a
 * folder that is a symbolic link leading outside it, is refused (WRITE_FAILED, permanent).
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { finished } from 'node:stream/promises';
import { DocbatchError } from '../errors.ts';

export interface OutputSink {
  /** Where outputs go, for people (a folder or an s3:// URI). */
  readonly root: string;
  /** True for a sink reached over the network (s3://): checked at the writer's start. */
  readonly remote: boolean;
  /** Throws unless outputs can be written there (S3: the bucket exists, the credentials work). */
  reach(): Promise<void>;
  /** Where `relPath` is written (a path or an s3:// URI); refused (permanent) outside the root. */
  locationOf(relPath: string): string;
  /** Writes a whole file; returns where it is. */
  writeWhole(relPath: string, content: string | Buffer): Promise<string>;
  /** Writes a file piece by piece (`write` waits when the stream is full); returns where it is. */
  writeStream(relPath: string, fill: (write: (chunk: string) => Promise<void>) => Promise<void>): Promise<string>;
  /**
   * Removes an earlier output of the document being written that this write supersedes and does
   * not write again (an `X.json` whose unit failed this time); nothing when there is none.
   */
  remove(relPath: string): Promise<void>;
  /** Whether an output exists. */
  exists(location: string): Promise<boolean>;
  /**
   * Whether outputs written before (their locations, as the writer recorded them) are all still
   * there: false when one is missing; null when that cannot be told from here (a location
   * outside this OUT_DIR, an OUT_DIR folder that does not exist on this machine, a store that
   * does not answer). A producer re-enqueueing a written document trusts `written` on null.
   */
  outputsPresent(locations: string[]): Promise<boolean | null>;
}

/** A write that will fail again however often it is tried (a name too long, a path outside OUT_DIR). */
export class PermanentWriteError extends DocbatchError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('WRITE_FAILED', message, options);
    this.name = 'PermanentWriteError';
  }
}

const PERMANENT_ERRNOS = new Set(['ENAMETOOLONG', 'EINVAL', 'ENOTDIR', 'EISDIR', 'ELOOP']);

export interface LocalSinkOptions {
  /**
   * A temporary file untouched this long is a dead writer's leftover, removed by a later write
   * into its folder; folders are listed for them at most this often. @defaultValue 60_000
   * (LOCK_DURATION_MS)
   */
  leftoverAfterMs?: number;
}

/** A temporary file's name: `.NAME.tmp-PID-8HEX`. */
const TEMPORARY = /^\..+\.tmp-\d+-[0-9a-f]{8}$/;

export class LocalSink implements OutputSink {
  readonly root: string;
  readonly remote = false;
  private readonly leftoverAfterMs: number;
  /** When each folder was last listed for leftovers (performance.now()). */
  private readonly listedAt = new Map<string, number>();

  constructor(root: string, options: LocalSinkOptions = {}) {
    this.root = resolve(root);
    this.leftoverAfterMs = options.leftoverAfterMs ?? 60_000;
  }

  /** A folder needs no connection; it is made on the first write. */
  async reach(): Promise<void> {}

  locationOf(relPath: string): string {
    return this.pathOf(relPath);
  }

  /** The absolute path of `relPath`, refused if it is not strictly inside the root. */
  pathOf(relPath: string): string {
    if (isAbsolute(relPath)) throw new PermanentWriteError(`output path ${JSON.stringify(relPath)} is absolute; outputs stay inside OUT_DIR ${this.root}`);
    const path = resolve(this.root, relPath);
    const rel = relative(this.root, path);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new PermanentWriteError(`output path ${JSON.stringify(relPath)} leads outside OUT_DIR ${this.root}`);
    return path;
  }

  /**
   * Creates the folder of `path` one level at a time, checking each level (symbolic links
   * resolved) is still inside the root before going into it: not even an empty folder is made
   * through a link that leads out. The root itself may be a link.
   */
  private async folder(path: string): Promise<string> {
    const dir = dirname(path);
    await mkdir(this.root, { recursive: true });
    const realRoot = await realpath(this.root);
    let current = this.root;
    for (const part of relative(this.root, dir).split(sep).filter(Boolean)) {
      current = join(current, part);
      try {
        await mkdir(current);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const rel = relative(realRoot, await realpath(current));
      if (rel.startsWith('..') || isAbsolute(rel)) throw new PermanentWriteError(`output folder ${current} is a link leading outside OUT_DIR ${this.root}`);
    }
    return dir;
  }

  async writeWhole(relPath: string, content: string | Buffer): Promise<string> {
    return this.writeStream(relPath, (write) => write(typeof content === 'string' ? content : content.toString('utf8')));
  }

  async writeStream(relPath: string, fill: (write: (chunk: string) => Promise<void>) => Promise<void>): Promise<string> {
    const path = this.pathOf(relPath);
    try {
      const dir = await this.folder(path);
      const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
      const stream = createWriteStream(tmp, { flags: 'wx' });
      const failure = new Promise<never>((_, reject) => stream.once('error', reject));
      failure.catch(() => {});
      const write = async (chunk: string) => {
        if (!stream.write(chunk)) await Promise.race([new Promise<void>((r) => stream.once('drain', () => r())), failure]);
      };
      try {
        await Promise.race([fill(write), failure]);
        stream.end();
        await Promise.race([finished(stream), failure]);
        await fsync(tmp);
        await rename(tmp, path);
      } catch (err) {
        stream.destroy();
        await rm(tmp, { force: true });
        throw err;
      }
      await fsyncDir(dir);
      await this.removeLeftovers(dir, path);
      return path;
    } catch (err) {
      throw classifyWriteError(err, path);
    }
  }

  /**
   * Removes what writes that never finished left in `dir` (a writer killed or stopped mid-write):
   * temporaries untouched for `leftoverAfterMs`, unless the folder was listed for them less than
   * that long ago. A writer still writing one touches it as it goes, and holds the job's lock;
   * best effort (a failure here fails no write). Their age is told by the folder's own clock
   * (`written`, the output just written there, was stamped by it a moment ago), never by this
   * machine's: on a folder shared by several machines (NFS) a clock ahead of the file server's by
   * more than `leftoverAfterMs` would take another writer's temporary, still being written, for a
   * dead one.
   */
  private async removeLeftovers(dir: string, written: string): Promise<void> {
    const now = performance.now();
    const last = this.listedAt.get(dir);
    if (last !== undefined && now - last < this.leftoverAfterMs) return;
    if (this.listedAt.size >= 10_000) this.listedAt.clear(); // bounded: forgetting costs a listing
    this.listedAt.set(dir, now);
    try {
      const folderNow = (await stat(written)).mtimeMs;
      for (const entry of await readdir(dir)) {
        if (!TEMPORARY.test(entry)) continue;
        const path = join(dir, entry);
        try {
          if (folderNow - (await stat(path)).mtimeMs >= this.leftoverAfterMs) await rm(path, { force: true });
        } catch {
          // gone meanwhile
        }
      }
    } catch {
      // the folder cannot be listed: the hourly sweep collects them
    }
  }

  async remove(relPath: string): Promise<void> {
    const path = this.pathOf(relPath);
    try {
      await rm(path, { force: true });
    } catch (err) {
      throw classifyWriteError(err, path);
    }
  }

  async exists(location: string): Promise<boolean> {
    try {
      await stat(location);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Outputs elsewhere than under this root, or a root that does not exist here (the writer's disk
   * is on another machine, with the same path or not), cannot be checked: null.
   */
  async outputsPresent(locations: string[]): Promise<boolean | null> {
    if (locations.length === 0) return false;
    for (const location of locations) {
      const rel = relative(this.root, location);
      if (!isAbsolute(location) || rel === '' || rel.startsWith('..') || isAbsolute(rel)) return null;
    }
    try {
      if (!(await stat(this.root)).isDirectory()) return null;
    } catch {
      return null;
    }
    for (const location of locations) if (!(await this.exists(location))) return false;
    return true;
  }
}

/** A failed write → WRITE_FAILED, permanent when trying again cannot help. */
export function classifyWriteError(err: unknown, path: string): DocbatchError {
  if (err instanceof DocbatchError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const message = `cannot write ${path}: ${(err as Error).message}`;
  return PERMANENT_ERRNOS.has(code) ? new PermanentWriteError(message, { cause: err }) : new DocbatchError('WRITE_FAILED', message, { cause: err });
}

/** Writes one file atomically at an absolute path (not an output: e.g. a results archive). */
export async function writeFileAtomic(path: string, content: string): Promise<void> {
  const sink = new LocalSink(dirname(dirname(path)));
  await sink.writeWhole(relative(sink.root, path), content);
}

/**
 * Removes temporary files that crashed writers left under `root` (`.name.tmp-PID-HEX`), older
 * than `olderThanMs` by `root`'s own clock (folderClock), unless `now` is given. Returns how many.
 */
export async function sweepTemporaries(root: string, olderThanMs: number, now?: number): Promise<number> {
  now ??= await folderClock(resolve(root));
  let removed = 0;
  const walk = async (dir: string, depth: number): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory() && depth < 8) await walk(path, depth + 1);
      else if (entry.isFile() && TEMPORARY.test(entry.name)) {
        try {
          if (now - (await stat(path)).mtimeMs >= olderThanMs) {
            await rm(path, { force: true });
            removed++;
          }
        } catch {
          // gone meanwhile
        }
      }
    }
  };
  await walk(resolve(root), 0);
  return removed;
}

/**
 * The time by `dir`'s own clock: the modification time of a probe file written there (a shared
 * folder's file server stamps it, whatever this machine's clock says), or this machine's clock
 * when nothing can be written there. The probe is named as a temporary: a crash leaves it to
 * a later sweep.
 */
export async function folderClock(dir: string): Promise<number> {
  const probe = join(dir, `.docbatch-clock.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const handle = await open(probe, 'wx');
    try {
      await handle.write('.');
      return (await handle.stat()).mtimeMs;
    } finally {
      await handle.close();
      await rm(probe, { force: true });
    }
  } catch {
    return Date.now();
  }
}

async function fsync(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  try {
    await fsync(dir);
  } catch {
    // Some filesystems refuse to fsync a directory; the rename is still atomic.
  }
}

