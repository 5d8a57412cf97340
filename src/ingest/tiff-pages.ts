/**
 * The size of every page of a TIFF, from its directory chain alone (no pixel is read): a TIFF's
 * pages are images of their own sizes, and sharp's header gives the first page's only; asking
 * sharp for page N walks the chain from the start each time (2,000 pages: minutes). Classic TIFF
 * and BigTIFF, either byte order. Reads a few bytes per page, served from blocks of the file read
 * ahead (blockReader): two awaited reads a page made 100,000 pages a walk of 52 s. A chain that
 * loops or points outside the file ends the walk (what was read is returned).
 */
import { open } from 'node:fs/promises';
import { blockReader } from '../render/tiff-page.ts';

/** Pages looked at, at most (a fax archive of this many pages is already far past any use). */
const MAX_PAGES = 100_000;

export interface TiffPage {
  /** 1-based. */
  page: number;
  width: number;
  height: number;
}

export async function tiffPageSizes(path: string): Promise<TiffPage[]> {
  const fh = await open(path, 'r');
  const readAt = blockReader(fh);
  try {
    const size = (await fh.stat()).size;
    const head = await readAt(0, 16);
    const le = head.toString('latin1', 0, 2) === 'II';
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const u64 = (b: Buffer, o: number) => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
    const big = u16(head, 2) === 43;
    const entryBytes = big ? 20 : 12;
    let offset = big ? u64(head, 8) : u32(head, 4);
    const pages: TiffPage[] = [];
    const seen = new Set<number>();
    while (offset > 0 && offset < size && !seen.has(offset) && pages.length < MAX_PAGES) {
      seen.add(offset);
      const countBytes = big ? 8 : 2;
      const count = big ? u64(await readAt(offset, 8), 0) : u16(await readAt(offset, 2), 0);
      if (count > 10_000) break;
      const dir = await readAt(offset + countBytes, count * entryBytes + (big ? 8 : 4));
      if (dir.length < count * entryBytes + (big ? 8 : 4)) break;
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
    return pages;
  } finally {
    await fh.close();
  }
}
