/**
 * A bounded local cache of blobs for a store that is not on this machine (S3): renderers open
 * PDFs and images by path, so a worker downloads each blob it renders once into CACHE_DIR and
 * serves later pages from there.
 *
 *   layout     `<dir>/blobs/<sha>` whole, verified blobs; `<dir>/tmp/` downloads in progress
 *              (renamed into place once their sha256 matches, so a file in blobs/ is always whole)
 *   bound      at most `maxBytes` in blobs/, least recently used out first; the blob just asked
 *              for, and any used within `graceMs`, are never taken out from under the renderer
 *              about to open them (the bound is then exceeded for as long as they are in use)
 *   sharing    several processes on one machine may share the folder: a download lands by rename,
 *              use is recorded in the file's mtime, and eviction looks at the mtime first
 *   one fetch  concurrent asks for one blob share one download; an ask whose signal aborts
 *              leaves it (ABORTED), and the download is aborted once no ask waits for it
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { DocbatchError } from '../errors.ts';

export interface BlobCacheOptions {
  dir: string;
  /** Bytes kept in the cache before the least recently used blobs go. */
  maxBytes: number;
  /** A blob used this recently is never evicted. @defaultValue 60_000 */
  graceMs?: number;
}

interface Entry {
  size: number;
  usedAt: number;
}

/** A download in progress and how many asks wait for it (one without a signal never leaves). */
interface Download {
  promise: Promise<string>;
  controller: AbortController;
  waiting: number;
}

export class BlobCache {
  readonly dir: string;
  readonly maxBytes: number;
  readonly graceMs: number;
  /** Insertion order is recency order: the first entry is the least recently used. */
  private readonly entries = new Map<string, Entry>();
  private readonly fetching = new Map<string, Download>();
  private loaded: Promise<void> | null = null;
  private bytes = 0;

  constructor(options: BlobCacheOptions) {
    if (!Number.isInteger(options.maxBytes) || options.maxBytes < 0) throw new TypeError(`BlobCache: option maxBytes must be an integer >= 0, got ${options.maxBytes}`);
    this.dir = options.dir;
    this.maxBytes = options.maxBytes;
    this.graceMs = options.graceMs ?? 60_000;
  }

  /** Bytes held (as this process knows them). */
  get size(): number {
    return this.bytes;
  }

  /** A path for a download or another temporary file (same filesystem as the cache). */
  async tempPath(label: string): Promise<string> {
    const tmp = join(this.dir, 'tmp');
    await mkdir(tmp, { recursive: true });
    return join(tmp, `${label}.${process.pid}.${randomBytes(6).toString('hex')}`);
  }

  /**
   * The cached file of blob `sha256`; on a miss, `fetch(tmp, signal)` fills a temporary file (and
   * checks it), which then takes its place. `signal` ends this ask (ABORTED); the download's own
   * signal aborts once every ask for it has.
   */
  async get(sha256: string, fetch: (tmp: string, signal: AbortSignal) => Promise<void>, signal?: AbortSignal): Promise<string> {
    if (signal?.aborted) throw aborted(signal, sha256);
    await this.load();
    const path = join(this.dir, 'blobs', sha256);
    const now = Date.now();
    try {
      const info = await stat(path);
      await utimes(path, new Date(now), new Date(now)).catch(() => {});
      this.remember(sha256, info.size, now);
      return path;
    } catch {
      // a miss
    }
    // Aborted while the cache was being looked at: no listener would hear it now (from here to
    // wait() nothing awaits, so this is the last moment it can have happened unseen).
    if (signal?.aborted) throw aborted(signal, sha256);
    let download = this.fetching.get(sha256);
    if (!download) {
      const controller = new AbortController();
      const started: Download = { controller, waiting: 0, promise: Promise.resolve('') };
      started.promise = this.download(sha256, path, (tmp) => fetch(tmp, controller.signal)).finally(() => {
        if (this.fetching.get(sha256) === started) this.fetching.delete(sha256);
      });
      started.promise.catch(() => {}); // its asks see the failure; one left by all of them is no one's
      this.fetching.set(sha256, started);
      download = started;
    }
    return this.wait(sha256, download, signal);
  }

  /** One ask waiting for a download; it leaves when `signal` aborts, and the last to leave aborts it. */
  private wait(sha256: string, download: Download, signal: AbortSignal | undefined): Promise<string> {
    download.waiting++;
    if (!signal) return download.promise;
    return new Promise((resolve, reject) => {
      const leave = () => {
        if (--download.waiting === 0) {
          download.controller.abort(signal.reason);
          // A later ask starts afresh rather than joining a download being aborted.
          if (this.fetching.get(sha256) === download) this.fetching.delete(sha256);
        }
        reject(aborted(signal, sha256));
      };
      signal.addEventListener('abort', leave, { once: true });
      download.promise.then(
        (path) => {
          signal.removeEventListener('abort', leave);
          resolve(path);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', leave);
          reject(err);
        },
      );
    });
  }

  private async download(sha256: string, path: string, fetch: (tmp: string) => Promise<void>): Promise<string> {
    const tmp = await this.tempPath(`get-${sha256.slice(0, 12)}`);
    try {
      await fetch(tmp);
      await mkdir(join(this.dir, 'blobs'), { recursive: true });
      await rename(tmp, path);
    } finally {
      await rm(tmp, { force: true });
    }
    const info = await stat(path);
    this.remember(sha256, info.size, Date.now());
    await this.evict(sha256);
    return path;
  }

  private remember(sha256: string, size: number, usedAt: number): void {
    const old = this.entries.get(sha256);
    if (old) {
      this.bytes -= old.size;
      this.entries.delete(sha256);
    }
    this.entries.set(sha256, { size, usedAt });
    this.bytes += size;
  }

  /** What an earlier process left in the folder counts against the bound too. */
  private load(): Promise<void> {
    this.loaded ??= (async () => {
      let names: string[] = [];
      try {
        names = await readdir(join(this.dir, 'blobs'));
      } catch {
        return;
      }
      const found: Array<[string, Entry]> = [];
      for (const name of names) {
        const info = await stat(join(this.dir, 'blobs', name)).catch(() => null);
        if (info?.isFile()) found.push([name, { size: info.size, usedAt: info.mtimeMs }]);
      }
      found.sort((a, b) => a[1].usedAt - b[1].usedAt);
      for (const [name, entry] of found) this.remember(name, entry.size, entry.usedAt);
    })();
    return this.loaded;
  }

  /** Least recently used out until within the bound, sparing `keep` and blobs in use. */
  private async evict(keep: string): Promise<void> {
    if (this.bytes <= this.maxBytes) return;
    const now = Date.now();
    for (const [sha256, entry] of [...this.entries]) {
      if (this.bytes <= this.maxBytes) break;
      if (sha256 === keep || now - entry.usedAt < this.graceMs) continue;
      const path = join(this.dir, 'blobs', sha256);
      // Another process sharing the folder may have used it since.
      const info = await stat(path).catch(() => null);
      if (info && now - info.mtimeMs < this.graceMs) {
        this.remember(sha256, info.size, info.mtimeMs);
        continue;
      }
      await rm(path, { force: true });
      this.entries.delete(sha256);
      this.bytes -= entry.size;
    }
  }
}

function aborted(signal: AbortSignal, sha256: string): DocbatchError {
  return new DocbatchError('ABORTED', `aborted while waiting for blob ${sha256.slice(0, 12)}`, { cause: signal.reason });
}
