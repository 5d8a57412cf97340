/**
 * The local cache of an S3 blob store (src/store/blob-cache.ts): bounded, least recently used
 * out first, one download for concurrent asks, blobs in use spared, and what a previous process
 * left counted against the bound.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobCache } from '../../src/store/blob-cache.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'docbatch-cache-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const id = (n: number) => String(n).padStart(64, '0');

function filler(sizes: Map<string, number>, fetched: string[]) {
  return (sha: string) => async (tmp: string) => {
    fetched.push(sha);
    await writeFile(tmp, Buffer.alloc(sizes.get(sha) ?? 100, sha.slice(-1)));
  };
}

describe('BlobCache', () => {
  it('keeps at most maxBytes, least recently used out first, never the blob just fetched', async () => {
    const fetched: string[] = [];
    const fill = filler(new Map([[id(4), 250]]), fetched);
    const cache = new BlobCache({ dir, maxBytes: 250, graceMs: 0 });
    await cache.get(id(1), fill(id(1)));
    await cache.get(id(2), fill(id(2)));
    await cache.get(id(1), fill(id(1))); // 1 is now the most recent
    await cache.get(id(3), fill(id(3))); // 300 bytes: 2 goes
    expect((await readdir(join(dir, 'blobs'))).sort()).toEqual([id(1), id(3)]);
    expect(cache.size).toBe(200);
    const big = await cache.get(id(4), fill(id(4))); // alone at the bound: everything else goes
    expect(await readdir(join(dir, 'blobs'))).toEqual([id(4)]);
    expect((await readFile(big)).length).toBe(250);
    expect(fetched).toEqual([id(1), id(2), id(3), id(4)]);
  });

  it('one download for concurrent asks; a failed download leaves nothing', async () => {
    const fetched: string[] = [];
    const cache = new BlobCache({ dir, maxBytes: 10_000 });
    const paths = await Promise.all(Array.from({ length: 5 }, () => cache.get(id(7), filler(new Map(), fetched)(id(7)))));
    expect(new Set(paths).size).toBe(1);
    expect(fetched).toEqual([id(7)]);
    await expect(cache.get(id(8), async (tmp) => {
      await writeFile(tmp, 'half');
      throw new Error('connection reset');
    })).rejects.toThrow('connection reset');
    expect(await readdir(join(dir, 'blobs'))).toEqual([id(7)]);
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
  });

  it('spares blobs used within the grace period (a renderer about to open them), even over the bound', async () => {
    const fetched: string[] = [];
    const cache = new BlobCache({ dir, maxBytes: 150, graceMs: 60_000 });
    await cache.get(id(1), filler(new Map(), fetched)(id(1)));
    await cache.get(id(2), filler(new Map(), fetched)(id(2)));
    expect((await readdir(join(dir, 'blobs'))).sort()).toEqual([id(1), id(2)]);
  });

  it("counts what an earlier process left in the folder, oldest out first", async () => {
    const first = new BlobCache({ dir, maxBytes: 1000, graceMs: 0 });
    await first.get(id(1), filler(new Map(), [])(id(1)));
    const second = new BlobCache({ dir, maxBytes: 150, graceMs: 0 });
    await second.get(id(2), filler(new Map(), [])(id(2)));
    expect(await readdir(join(dir, 'blobs'))).toEqual([id(2)]);
  });
});

describe('BlobCache asks with a signal', () => {
  /** A download that ends only when its own signal aborts. */
  const hanging = (started: string[]) => (tmp: string, signal: AbortSignal) => {
    started.push(tmp);
    return new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(new Error('download aborted')), { once: true }));
  };

  it('an ask whose signal aborts while the cache is still looking leaves with ABORTED, and its download is aborted', async () => {
    const started: string[] = [];
    const cache = new BlobCache({ dir, maxBytes: 10_000 });
    const ask = new AbortController();
    const pending = cache.get(id(9), hanging(started), ask.signal);
    ask.abort(new Error('lock lost')); // before the ask reaches the download: the cache is still loading
    const outcome = await Promise.race([pending.then(() => 'resolved', (err: unknown) => (err as { code?: string }).code), new Promise((r) => setTimeout(() => r('still waiting'), 1000))]);
    expect(outcome).toBe('ABORTED');
    // A later ask starts a download of its own and is not tied to the abandoned one.
    const fresh = new AbortController();
    const again = cache.get(id(9), hanging(started), fresh.signal);
    await new Promise((r) => setTimeout(r, 50));
    fresh.abort();
    await expect(again).rejects.toMatchObject({ code: 'ABORTED' });
  });
});
