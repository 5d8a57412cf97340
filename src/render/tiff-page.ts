/**
 * One page of a multi-page TIFF as a TIFF of its own, so that sharp (libvips) never walks the
 * file's directory chain. Given a file, libvips reads every directory of it to count the pages
 * before it decodes any (2,000 pages: ~150 ms a page whichever page, so a document's pages cost
 * O(N²) directory reads). Here the chain is walked once per open document, as far as the pages
 * asked for, and kept (TiffPages, an LRU by path); a page is then its directory, the values that
 * directory points to and its strips or tiles, copied into a small buffer with the offsets
 * rewritten. Pixels are untouched: the same bytes decode the same way.
 *
 * What is not relocated here makes `page` return null and the caller reads the file as before:
 * old-style JPEG (its data is pointed to by tags of their own), unknown field types, a page
 * without strip or tile offsets or with both, a page of more than MAX_PAGE_BYTES or of pieces that add up to
 * more than the file (they overlap: a hostile file's amplification). Sub-directories (EXIF, GPS,
 * SubIFDs) and free-space lists are left out: nothing is drawn from them. A chain that loops, a
 * directory or value outside the file, or a page past the chain's end is RENDER_FAILED, naming
 * the page and the byte offset.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { DocbatchError } from '../errors.ts';

/** A page whose data is larger than this is read from the file by libvips (no copy in memory). */
const MAX_PAGE_BYTES = 256 * 1024 * 1024;
/** More entries than this in one directory is no image a scanner or libtiff writes. */
const MAX_ENTRIES = 4096;
/** Pages read from their files at once (each holds a file open and its page's bytes). */
const FILES_AT_ONCE = 4;

/** Bytes of one value of each TIFF field type (TIFF 6.0 and BigTIFF). */
const TYPE_BYTES: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8 };
/** Tags whose values are offsets to other directories or to free space: left out of the page. */
const DROPPED = new Set([288, 289, 330, 34665, 34853, 40965]);
const STRIP_OFFSETS = 273;
const STRIP_BYTES = 279;
const TILE_OFFSETS = 324;
const TILE_BYTES = 325;
const COMPRESSION = 259;
const OLD_JPEG = new Set([513, 514]);

interface Layout {
  le: boolean;
  big: boolean;
  size: number;
}

/** The directories of one file found so far; `next` is where the chain goes on (0: its end). */
interface Chain {
  layout: Layout | null;
  offsets: number[];
  next: number;
  seen: Set<number>;
  /** Walks are serialized: the pages of one document render concurrently. */
  walking: Promise<unknown>;
}

function failed(message: string, cause?: unknown): DocbatchError {
  return new DocbatchError('RENDER_FAILED', message, cause === undefined ? {} : { cause });
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  return buf.subarray(0, bytesRead);
}

/** `length` bytes at `position` (fewer at the end of the file). */
export type ReadAt = (position: number, length: number) => Promise<Buffer>;

/**
 * Positional reads served from the last block read, `blockBytes` at a time: a chain's directories
 * follow one another, or their small pages, so one read brings in many (two awaited reads a
 * directory made a walk of 100,000 pages 52 s on a loaded machine). Each block is a new buffer:
 * what a caller got stays valid.
 */
export function blockReader(fh: FileHandle, blockBytes = 64 * 1024): ReadAt {
  let block: Buffer = Buffer.alloc(0);
  let blockAt = 0;
  return async (position, length) => {
    if (position < blockAt || position + length > blockAt + block.length) {
      block = await readAt(fh, position, Math.max(length, blockBytes));
      blockAt = position;
    }
    const from = position - blockAt;
    return block.subarray(from, Math.min(block.length, from + length));
  };
}

class Fields {
  readonly layout: Layout;
  constructor(layout: Layout) {
    this.layout = layout;
  }
  u16(b: Buffer, o: number): number {
    return this.layout.le ? b.readUInt16LE(o) : b.readUInt16BE(o);
  }
  u32(b: Buffer, o: number): number {
    return this.layout.le ? b.readUInt32LE(o) : b.readUInt32BE(o);
  }
  u64(b: Buffer, o: number): number {
    return Number(this.layout.le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
  }
  /** An offset or count field: 4 bytes, 8 in BigTIFF. */
  word(b: Buffer, o: number): number {
    return this.layout.big ? this.u64(b, o) : this.u32(b, o);
  }
  put16(b: Buffer, o: number, v: number): void {
    if (this.layout.le) b.writeUInt16LE(v, o);
    else b.writeUInt16BE(v, o);
  }
  putWord(b: Buffer, o: number, v: number): void {
    if (this.layout.big) {
      if (this.layout.le) b.writeBigUInt64LE(BigInt(v), o);
      else b.writeBigUInt64BE(BigInt(v), o);
    } else if (this.layout.le) b.writeUInt32LE(v, o);
    else b.writeUInt32BE(v, o);
  }
  /** Value `i` of an array of SHORT, LONG or LONG8. */
  number(b: Buffer, type: number, i: number): number {
    return type === 3 ? this.u16(b, i * 2) : type === 16 ? this.u64(b, i * 8) : this.u32(b, i * 4);
  }
}

/** The TIFF's layout from its header, or null when it is no TIFF. */
async function layoutOf(fh: FileHandle): Promise<{ layout: Layout; first: number } | null> {
  const size = (await fh.stat()).size;
  const head = await readAt(fh, 0, 16);
  if (head.length < 8) return null;
  const order = head.toString('latin1', 0, 2);
  if (order !== 'II' && order !== 'MM') return null;
  const le = order === 'II';
  const magic = le ? head.readUInt16LE(2) : head.readUInt16BE(2);
  if (magic !== 42 && (magic !== 43 || head.length < 16)) return null;
  const layout = { le, big: magic === 43, size };
  return { layout, first: new Fields(layout).word(head, layout.big ? 8 : 4) };
}

interface Directory {
  entries: Buffer;
  count: number;
  next: number;
}

/** A directory's first read: its count and, for all but the largest directories, its entries and next offset too. */
const DIRECTORY_READ_BYTES = 4096;

async function readDirectory(read: ReadAt, f: Fields, at: number, page: number): Promise<Directory> {
  const { big, size } = f.layout;
  const countBytes = big ? 8 : 2;
  const entryBytes = big ? 20 : 12;
  const outside = (): DocbatchError => failed(`TIFF page ${page}: its directory at byte ${at} lies outside the file (${size} bytes)`);
  if (at < (big ? 16 : 8) || at + countBytes > size) throw outside();
  let buf = await read(at, Math.min(DIRECTORY_READ_BYTES, size - at));
  const count = big ? f.u64(buf, 0) : f.u16(buf, 0);
  if (count === 0 || count > MAX_ENTRIES) throw failed(`TIFF page ${page}: its directory at byte ${at} has ${count} entries`);
  const length = countBytes + count * entryBytes + (big ? 8 : 4);
  if (at + length > size) throw outside();
  if (buf.length < length) buf = await read(at, length);
  const entries = buf.subarray(countBytes, countBytes + count * entryBytes);
  return { entries, count, next: f.word(buf, countBytes + count * entryBytes) };
}

/**
 * Offsets of a TIFF's directories, walked once per open document as far as the pages asked for.
 * `capacity` documents are kept, least recently used out first. At most FILES_AT_ONCE pages are
 * read at a time: a `document` task asks for all of a TIFF's pages at once.
 */
export class TiffPages {
  readonly #capacity: number;
  readonly #chains = new Map<string, Promise<Chain>>();
  #reading = 0;
  readonly #waiting: Array<() => void> = [];
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
    if (this.#reading >= FILES_AT_ONCE) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#reading += 1;
    try {
      const fh = await open(path, 'r');
      try {
        const chain = await this.#chain(path, fh);
        if (!chain.layout) return null;
        const f = new Fields(chain.layout);
        const at = await this.#directoryAt(chain, fh, f, page);
        return await extract(fh, f, await readDirectory((position, length) => readAt(fh, position, length), f, at, page), page);
      } finally {
        await fh.close();
      }
    } finally {
      this.#reading -= 1;
      this.#waiting.shift()?.();
    }
  }

  #chain(path: string, fh: FileHandle): Promise<Chain> {
    let chain = this.#chains.get(path);
    if (chain) {
      this.#chains.delete(path);
      this.#chains.set(path, chain);
      return chain;
    }
    chain = layoutOf(fh).then((found) => ({ layout: found?.layout ?? null, offsets: [], next: found?.first ?? 0, seen: new Set<number>(), walking: Promise.resolve() }));
    this.#chains.set(path, chain);
    chain.catch(() => this.#chains.get(path) === chain && this.#chains.delete(path));
    while (this.#chains.size > this.#capacity) this.#chains.delete(this.#chains.keys().next().value as string);
    return chain;
  }

  async #directoryAt(chain: Chain, fh: FileHandle, f: Fields, page: number): Promise<number> {
    const walk = chain.walking.then(async () => {
      const read = blockReader(fh);
      while (chain.offsets.length < page) {
        const at = chain.next;
        const n = chain.offsets.length + 1;
        if (at === 0) throw failed(`TIFF page ${page}: the file's directory chain ends after page ${n - 1}`);
        if (chain.seen.has(at)) throw failed(`TIFF page ${n}: the directory chain loops back to byte ${at}`);
        const dir = await readDirectory(read, f, at, n);
        this.directoriesRead += 1;
        chain.seen.add(at);
        chain.offsets.push(at);
        chain.next = dir.next;
      }
      return chain.offsets[page - 1] as number;
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
  const outside = (what: string, at: number, length: number): DocbatchError =>
    failed(`TIFF page ${page}: ${what} at byte ${at} (${length} bytes) lies outside the file (${size} bytes)`);

  type Entry = { tag: number; type: number; count: number; value: Buffer };
  const entries: Entry[] = [];
  // What is copied (values, then strips or tiles) is at most the file's size: a page's pieces do
  // not overlap, a hostile directory's may (4,096 values of 1 MB, or 256 strips, all the same 1 MB
  // of a file of 1 MB: 4 GB or 256 MB to allocate). Such a page is left to libvips.
  const budget = Math.min(MAX_PAGE_BYTES, size);
  let valueBytes = 0;
  for (let i = 0; i < dir.count; i++) {
    const e = dir.entries.subarray(i * entryBytes, (i + 1) * entryBytes);
    const tag = f.u16(e, 0);
    const type = f.u16(e, 2);
    const count = f.word(e, 4);
    if (OLD_JPEG.has(tag)) return null;
    if (DROPPED.has(tag) || type === 13 || type === 18) continue;
    const unit = TYPE_BYTES[type];
    if (unit === undefined) return null;
    const bytes = unit * count;
    const field = e.subarray(big ? 12 : 8);
    let value: Buffer;
    if (bytes <= inline) value = Buffer.from(field.subarray(0, bytes));
    else {
      const at = f.word(field, 0);
      valueBytes += bytes;
      if (valueBytes > budget) return null;
      if (at + bytes > size) throw outside(`the value of tag ${tag}`, at, bytes);
      value = await readAt(fh, at, bytes);
    }
    entries.push({ tag, type, count, value });
  }
  const find = (tag: number) => entries.find((e) => e.tag === tag);
  const compression = find(COMPRESSION);
  if (compression && f.number(compression.value, compression.type, 0) === 6) return null;
  // Strip and tile offsets both: libtiff reads the later (the tiles), whether TileWidth is there
  // or not; only one set would be moved here, the other left naming bytes of the file.
  if (find(STRIP_OFFSETS) && find(TILE_OFFSETS)) return null;
  const offsetsEntry = find(STRIP_OFFSETS) ?? find(TILE_OFFSETS);
  const countsEntry = offsetsEntry?.tag === STRIP_OFFSETS ? find(STRIP_BYTES) : find(TILE_BYTES);
  if (!offsetsEntry || !countsEntry || offsetsEntry.count !== countsEntry.count || ![3, 4, 16].includes(offsetsEntry.type) || ![3, 4, 16].includes(countsEntry.type)) return null;

  const pieces = offsetsEntry.count;
  const from: number[] = [];
  const lengths: number[] = [];
  let total = 0;
  for (let i = 0; i < pieces; i++) {
    const at = f.number(offsetsEntry.value, offsetsEntry.type, i);
    const length = f.number(countsEntry.value, countsEntry.type, i);
    if (at + length > size) throw outside(offsetsEntry.tag === STRIP_OFFSETS ? `strip ${i + 1}` : `tile ${i + 1}`, at, length);
    from.push(at);
    lengths.push(length);
    total += length;
    if (total + valueBytes > budget) return null;
  }

  // The new file: header, the directory (its offsets field rewritten as LONG or LONG8), the
  // values it points to, then the strips or tiles in order.
  const wordType = big ? 16 : 4;
  offsetsEntry.type = wordType;
  offsetsEntry.value = Buffer.alloc(pieces * (big ? 8 : 4));
  const headerBytes = big ? 16 : 8;
  const dirBytes = (big ? 8 : 2) + entries.length * entryBytes + (big ? 8 : 4);
  let cursor = headerBytes + dirBytes;
  const valueAt = new Map<Entry, number>();
  for (const e of entries) {
    if (e.value.length <= inline) continue;
    cursor += cursor % 2; // word boundary
    valueAt.set(e, cursor);
    cursor += e.value.length;
  }
  cursor += cursor % 2;
  const dataAt = cursor;
  const out = Buffer.alloc(dataAt + total);
  let put = dataAt;
  for (let i = 0; i < pieces; i++) {
    f.putWord(offsetsEntry.value, i * (big ? 8 : 4), put);
    put += lengths[i] as number;
  }
  await copyPieces(fh, from, lengths, out, dataAt, total);

  out.write(f.layout.le ? 'II' : 'MM', 0, 'latin1');
  f.put16(out, 2, big ? 43 : 42);
  if (big) {
    f.put16(out, 4, 8);
    f.putWord(out, 8, headerBytes);
  } else f.putWord(out, 4, headerBytes);
  let o = headerBytes;
  if (big) f.putWord(out, o, entries.length);
  else f.put16(out, o, entries.length);
  o += big ? 8 : 2;
  for (const e of entries) {
    f.put16(out, o, e.tag);
    f.put16(out, o + 2, e.type);
    f.putWord(out, o + 4, e.count);
    const field = o + (big ? 12 : 8);
    const at = valueAt.get(e);
    if (at === undefined) e.value.copy(out, field);
    else {
      f.putWord(out, field, at);
      e.value.copy(out, at);
    }
    o += entryBytes;
  }
  f.putWord(out, o, 0); // no next page
  return out;
}

/** The pieces copied after one another into `out` at `at`: one read when they lie close together in the file. */
async function copyPieces(fh: FileHandle, from: number[], lengths: number[], out: Buffer, at: number, total: number): Promise<void> {
  let start = Infinity;
  let end = 0;
  from.forEach((p, i) => {
    start = Math.min(start, p);
    end = Math.max(end, p + (lengths[i] as number));
  });
  if (from.length === 0) return;
  if (end - start <= total * 2 + 65536) {
    const span = await readAt(fh, start, end - start);
    let put = at;
    from.forEach((p, i) => {
      put += span.copy(out, put, p - start, p - start + (lengths[i] as number));
    });
    return;
  }
  let put = at;
  for (let i = 0; i < from.length; i++) {
    const { bytesRead } = await fh.read(out, put, lengths[i] as number, from[i] as number);
    put += bytesRead;
  }
}
