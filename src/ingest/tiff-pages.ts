/**
 * The size of every page of a TIFF, from its directory chain alone (no pixel is read): a TIFF's
 * pages are images of their own sizes, and sharp's header gives the first page's only; asking
 * sharp for page N walks the chain from the start each time (2,000 pages: minutes). Classic TIFF
 * and BigTIFF, either byte order. The file is read in blocks (blockReader, shared with the
 * worker's walk: a chain of 100,000 directories is 11 MB, some 200 reads, not two per page); a
 * chain that loops or points outside the file ends the walk (what was read is returned).
 *
 * Also how many pages a TIFF has, before sharp is asked: libvips counts them by reading every
 * directory, ~50 µs each, so a 45 MB file of 400,000 directories held enqueue ~20 s before it
 * was refused for having more than INPUT_MAX_PAGES. With `limit`, the walk stops there.
 */
import { open } from 'node:fs/promises';
import { blockReader } from '../render/tiff-page.ts';

/** Pages looked at, at most, unless the caller says otherwise. */
const MAX_PAGES = 100_000;
/** Whatever the caller says (INPUT_MAX_PAGES may be raised): a page costs this walk ~100 bytes of memory. */
const HARD_LIMIT = 1_000_000;

export interface TiffPage {
  /** 1-based. */
  page: number;
  width: number;
  height: number;
}

export interface TiffChain {
  pages: TiffPage[];
  /** False when the walk stopped at `limit` with more directories after it. */
  complete: boolean;
}

export async function tiffPageSizes(path: string, limit = MAX_PAGES): Promise<TiffPage[]> {
  return (await tiffChain(path, limit)).pages;
}

/** Every directory of the chain, up to `limit` of them (at most HARD_LIMIT), and whether the chain ended there. */
export async function tiffChain(path: string, wanted = MAX_PAGES): Promise<TiffChain> {
  const limit = Math.min(wanted, HARD_LIMIT);
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const readAt = blockReader(fh);
    const head = await readAt(0, 16);
    if (head.length < 8) return { pages: [], complete: true };
    const le = head.toString('latin1', 0, 2) === 'II';
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const u64 = (b: Buffer, o: number) => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
    const big = u16(head, 2) === 43;
    if (big && head.length < 16) return { pages: [], complete: true };
    const entryBytes = big ? 20 : 12;
    const countBytes = big ? 8 : 2;
    const nextBytes = big ? 8 : 4;
    let offset = big ? u64(head, 8) : u32(head, 4);
    const pages: TiffPage[] = [];
    const seen = new Set<number>();
    const more = () => offset > 0 && offset < size && !seen.has(offset);
    while (more() && pages.length < limit) {
      seen.add(offset);
      const countAt = await readAt(offset, countBytes);
      if (countAt.length < countBytes) break;
      const count = big ? u64(countAt, 0) : u16(countAt, 0);
      if (count > 10_000) break;
      const dir = await readAt(offset + countBytes, count * entryBytes + nextBytes);
      if (dir.length < count * entryBytes + nextBytes) break;
      let width = 0;
      let height = 0;
      for (let i = 0; i < count; i++) {
        const e = i * entryBytes;
        const tag = u16(dir, e);
        if (tag !== 256 && tag !== 257) continue;
        const type = u16(dir, e + 2);
        const valueAt = e + (big ? 12 : 8);
        const value = type === 3 ? u16(dir, valueAt) : type === 16 && big ? u64(dir, valueAt) : u32(dir, valueAt);
        if (tag === 256) width = value;
        else height = value;
      }
      pages.push({ page: pages.length + 1, width, height });
      offset = big ? u64(dir, count * entryBytes) : u32(dir, count * entryBytes);
    }
    return { pages, complete: !(pages.length >= limit && more()) };
  } finally {
    await fh.close();
  }
}

