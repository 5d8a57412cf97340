/**
 * The size of every page of a TIFF, from its directory chain alone (no pixel is read): a TIFF's
 * pages are images of their own sizes, and sharp's header gives the first page's only; asking
 * sharp for page N walks the chain from the start each time (2,000 pages: minutes). The chain is
 * walked by the worker's walker (src/render/tiff-chain.ts: one set of limits, one rule of what is
 * damage), the file read in blocks (a chain of 100,000 directories is 11 MB, some 200 reads, not
 * two per page).
 *
 * Damage (a chain that loops; a directory, a strip or tile, or the array of their offsets or byte
 * counts outside the file: tiff-chain.ts) ends the
 * walk and is returned with the pages read before it: enqueue refuses such a file (IMAGE_CORRUPT,
 * naming the page), where the worker would fail its pages one by one. A page's strip or tile
 * arrays are checked while what they cost to read stays within twice the file's size and 1 MiB
 * (a real file's arrays do not overlap; a hostile one's may name the same megabytes on every
 * page); past that the pages are still walked and counted, and their pieces left to the worker.
 *
 * Also how many pages a TIFF has, before sharp is asked: libvips counts them by reading every
 * directory, ~50 µs each, so a 45 MB file of 400,000 directories held enqueue ~20 s before it
 * was refused for having more than INPUT_MAX_PAGES. With `limit`, the walk stops there.
 */
import { open } from 'node:fs/promises';
import { blockReader, ChainWalk, entriesOf, Fields, MAX_DIRECTORIES, pageSize, planPage, readLayout, readPieces, TiffDamage } from '../render/tiff-chain.ts';

/** Pages looked at, at most, unless the caller says otherwise. */
const MAX_PAGES = 100_000;

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
  /** Where the walk stopped at damage (the pages before it are in `pages`; the damaged page too when its directory could be read). */
  damage?: TiffDamage;
}

export async function tiffPageSizes(path: string, limit = MAX_PAGES): Promise<TiffPage[]> {
  return (await tiffChain(path, limit)).pages;
}

/** Every directory of the chain, up to `limit` of them (at most MAX_DIRECTORIES), whether the chain ended there, and its damage. */
export async function tiffChain(path: string, wanted = MAX_PAGES): Promise<TiffChain> {
  const limit = Math.min(wanted, MAX_DIRECTORIES);
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const read = blockReader(fh);
    // The pieces' arrays from their own blocks: they often lie together, away from the directories.
    const readArrays = blockReader(fh);
    const found = await readLayout(read, size);
    if (!found) return { pages: [], complete: true };
    const f = new Fields(found.layout);
    const walk = new ChainWalk(found.first);
    const pages: TiffPage[] = [];
    let arrayBudget = 2 * size + 1024 * 1024;
    try {
      while (pages.length < limit) {
        const dir = await walk.step(read, f);
        if (!dir) break;
        const page = pages.length + 1;
        const entries = entriesOf(f, dir);
        pages.push({ page, ...pageSize(f, entries) });
        const plan = planPage(f, entries, page);
        const arrays = plan ? plan.offsets.bytes + plan.counts.bytes : 0;
        if (plan && arrays <= arrayBudget) {
          arrayBudget -= arrays;
          await readPieces(readArrays, f, plan, page);
        }
      }
    } catch (err) {
      if (err instanceof TiffDamage) return { pages, complete: false, damage: err };
      throw err;
    }
    return { pages, complete: walk.ended };
  } finally {
    await fh.close();
  }
}
