/**
 * One page of a multi-page TIFF as a TIFF of its own, so that sharp (libvips) never walks the
 * file's directory chain. Given a file, libvips reads every directory of it to count the pages
 * before it decodes any (2,000 pages: ~150 ms a page whichever page, so a document's pages cost
 * O(N²) directory reads). Here the chain is walked once per open document, as far as the pages
 * asked for, and kept (TiffPages, an LRU by path); a page is then its directory, the values that
 * directory points to and its strips or tiles, copied into a small buffer with the offsets
 * rewritten. Pixels are untouched: the same bytes decode the same way.
 *
 * The chain, its limits and what counts as damage are tiff-chain.ts's, shared with enqueue (which
 * refuses a damaged file as IMAGE_CORRUPT). What is not relocated here makes `page` return null
 * and the caller reads the file as before (planPage: old-style JPEG, unknown field types, a page
 * without strip or tile offsets or with both, another tag's value outside the file), as does a page of more than MAX_PAGE_BYTES or of
 * pieces that add up to more than the file (they overlap: a hostile file's amplification).
 * Sub-directories (EXIF, GPS, SubIFDs) and free-space lists are left out: nothing is drawn from
 * them. Damage, or a page past the chain's end, is RENDER_FAILED, naming the page and the byte offset.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { DocbatchError } from '../errors.ts';
import { blockReader, ChainWalk, type Directory, type Entry, entriesOf, Fields, type Layout, type Pieces, planPage, readAt, readDirectory, readLayout, readPieces, TiffDamage, valueOf } from './tiff-chain.ts';

export { blockReader, type ReadAt } from './tiff-chain.ts';

/** A page whose data is larger than this is read from the file by libvips (no copy in memory). */
const MAX_PAGE_BYTES = 256 * 1024 * 1024;
/** Pages read from their files at once (each holds a file open and its page's bytes). */
const FILES_AT_ONCE = 4;

/** The directories of one file found so far. */
interface Chain {
  layout: Layout | null;
  walk: ChainWalk;
  /** Walks are serialized: the pages of one document render concurrently. */
  walking: Promise<unknown>;
}

function failed(message: string, cause?: unknown): DocbatchError {
  return new DocbatchError('RENDER_FAILED', message, cause === undefined ? {} : { cause });
}

/** TiffDamage → RENDER_FAILED with the same message (it names the page and the byte). */
function asFailure(err: unknown): unknown {
  return err instanceof TiffDamage ? failed(err.message, err) : err;
}

/**
 * At most `size` holders at once; a slot freed is handed to the first waiter as it is freed, so
 * one that arrives between the release and the waiter's turn waits too (it took the freed slot
 * and the waiter took another: one holder too many).
 */
export class Gate {
  readonly #size: number;
  #held = 0;
  readonly #waiting: Array<() => void> = [];
  constructor(size: number) {
    this.#size = size;
  }
  get held(): number {
    return this.#held;
  }
  async acquire(): Promise<void> {
    if (this.#held < this.#size) {
      this.#held += 1;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }
  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#held -= 1;
  }
}

/**
 * Offsets of a TIFF's directories, walked once per open document as far as the pages asked for.
 * `capacity` documents are kept, least recently used out first. At most FILES_AT_ONCE pages are
 * read at a time: a `document` task asks for all of a TIFF's pages at once.
 */
export class TiffPages {
  readonly #capacity: number;
  readonly #chains = new Map<string, Promise<Chain>>();
  readonly #gate = new Gate(FILES_AT_ONCE);
  /** Directories read since this was made (a walk's cost; tests count it). */
  directoriesRead = 0;

  constructor(capacity = 4) {
    this.#capacity = Math.max(1, capacity);
  }

  /**
   * Page `page` (1-based) of the TIFF at `path` as a single-page TIFF, or null when the file is
   * no TIFF or the page holds what is not relocated here (the caller reads the file itself).
   */
  async page(path: string, page: number): Promise<Buffer | null> {
    await this.#gate.acquire();
    try {
      const fh = await open(path, 'r');
      try {
        const chain = await this.#chain(path, fh);
        if (!chain.layout) return null;
        const f = new Fields(chain.layout);
        const at = await this.#directoryAt(chain, fh, f, page);
        const read = (position: number, length: number) => readAt(fh, position, length);
        return await extract(fh, f, await readDirectory(read, f, at, page), page);
      } catch (err) {
        throw asFailure(err);
      } finally {
        await fh.close();
      }
    } finally {
      this.#gate.release();
    }
  }

  #chain(path: string, fh: FileHandle): Promise<Chain> {
    let chain = this.#chains.get(path);
    if (chain) {
      this.#chains.delete(path);
      this.#chains.set(path, chain);
      return chain;
    }
    chain = fh
      .stat()
      .then(({ size }) => readLayout((position, length) => readAt(fh, position, length), size))
      .then((found) => ({ layout: found?.layout ?? null, walk: new ChainWalk(found?.first ?? 0), walking: Promise.resolve() }));
    this.#chains.set(path, chain);
    chain.catch(() => this.#chains.get(path) === chain && this.#chains.delete(path));
    while (this.#chains.size > this.#capacity) this.#chains.delete(this.#chains.keys().next().value as string);
    return chain;
  }

  async #directoryAt(chain: Chain, fh: FileHandle, f: Fields, page: number): Promise<number> {
    const walk = chain.walking.then(async () => {
      const read = blockReader(fh);
      while (chain.walk.offsets.length < page) {
        const found = chain.walk.offsets.length;
        if ((await chain.walk.step(read, f)) === null) throw failed(`TIFF page ${page}: the file's directory chain ends after page ${found}`);
        this.directoriesRead += 1;
      }
      return chain.walk.offsets[page - 1] as number;
    });
    chain.walking = walk.catch(() => undefined);
    return walk;
  }
}

/** The page as a TIFF of its own, or null (see the file comment). */
async function extract(fh: FileHandle, f: Fields, dir: Directory, page: number): Promise<Buffer | null> {
  const { big, size } = f.layout;
  const entryBytes = big ? 20 : 12;
  const inline = big ? 8 : 4;
  const plan = planPage(f, entriesOf(f, dir), page);
  if (!plan) return null;
  // What is copied (values, then strips or tiles) is at most the file's size: a page's pieces do
  // not overlap, a hostile directory's may (4,096 values of 1 MB, or 256 strips, all the same 1 MB
  // of a file of 1 MB: 4 GB or 256 MB to allocate). Such a page is left to libvips, its values
  // unread (the piece arrays are counted in valueBytes: they are read first, and only they).
  // The copy is bounded the same way, its offsets rewritten as words (SHORT offsets double).
  const budget = Math.min(MAX_PAGE_BYTES, size);
  if (plan.valueBytes > budget) return null;
  const read = (position: number, length: number) => readAt(fh, position, length);
  const pieces = await readPieces(read, f, plan, page);
  const wordBytes = big ? 8 : 4;
  if (plan.valueBytes - (plan.offsets.inline ? 0 : plan.offsets.bytes) + pieces.count * wordBytes + pieces.total > budget) return null;

  // The new file: header, the directory (its offsets field rewritten as LONG or LONG8), the
  // values it points to, then the strips or tiles in order.
  const values = new Map<Entry, Buffer>();
  for (const e of plan.entries) values.set(e, e === plan.offsets ? Buffer.alloc(pieces.count * wordBytes) : e === plan.counts ? pieces.lengths : await valueOf(read, e));
  const typeOf = (e: Entry): number => (e === plan.offsets ? (big ? 16 : 4) : e.type);
  const headerBytes = big ? 16 : 8;
  const dirBytes = (big ? 8 : 2) + plan.entries.length * entryBytes + (big ? 8 : 4);
  let cursor = headerBytes + dirBytes;
  const valueAt = new Map<Entry, number>();
  for (const e of plan.entries) {
    const value = values.get(e) as Buffer;
    if (value.length <= inline) continue;
    cursor += cursor % 2; // word boundary
    valueAt.set(e, cursor);
    cursor += value.length;
  }
  cursor += cursor % 2;
  const dataAt = cursor;
  const out = Buffer.alloc(dataAt + pieces.total);
  const newOffsets = values.get(plan.offsets) as Buffer;
  let put = dataAt;
  for (let i = 0; i < pieces.count; i++) {
    f.putWord(newOffsets, i * wordBytes, put);
    put += f.number(pieces.lengths, pieces.lengthsType, i);
  }
  await copyPieces(fh, f, pieces, out, dataAt);

  out.write(f.layout.le ? 'II' : 'MM', 0, 'latin1');
  f.put16(out, 2, big ? 43 : 42);
  if (big) {
    f.put16(out, 4, 8);
    f.putWord(out, 8, headerBytes);
  } else f.putWord(out, 4, headerBytes);
  let o = headerBytes;
  if (big) f.putWord(out, o, plan.entries.length);
  else f.put16(out, o, plan.entries.length);
  o += big ? 8 : 2;
  for (const e of plan.entries) {
    const value = values.get(e) as Buffer;
    f.put16(out, o, e.tag);
    f.put16(out, o + 2, typeOf(e));
    f.putWord(out, o + 4, e.count);
    const field = o + (big ? 12 : 8);
    const at = valueAt.get(e);
    if (at === undefined) value.copy(out, field);
    else {
      f.putWord(out, field, at);
      value.copy(out, at);
    }
    o += entryBytes;
  }
  f.putWord(out, o, 0); // no next page
  return out;
}

/** The pieces copied after one another into `out` at `at`: one read when they lie close together in the file. */
async function copyPieces(fh: FileHandle, f: Fields, pieces: Pieces, out: Buffer, at: number): Promise<void> {
  if (pieces.count === 0) return;
  const from = (i: number): number => f.number(pieces.offsets, pieces.offsetsType, i);
  const length = (i: number): number => f.number(pieces.lengths, pieces.lengthsType, i);
  let start = Infinity;
  let end = 0;
  for (let i = 0; i < pieces.count; i++) {
    start = Math.min(start, from(i));
    end = Math.max(end, from(i) + length(i));
  }
  let put = at;
  if (end - start <= pieces.total * 2 + 65536) {
    const span = await readAt(fh, start, end - start);
    for (let i = 0; i < pieces.count; i++) put += span.copy(out, put, from(i) - start, from(i) - start + length(i));
    return;
  }
  for (let i = 0; i < pieces.count; i++) {
    const { bytesRead } = await fh.read(out, put, length(i), from(i));
    put += bytesRead;
  }
}
