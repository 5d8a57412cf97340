/**
 * The one reading of a TIFF's directory chain, for enqueue (src/ingest/tiff-pages.ts: every
 * page's size, and any damage, before anything is queued) and for the worker (tiff-page.ts: a
 * page handed to sharp as a TIFF of its own). One set of limits and one rule of what is damage,
 * so a file the worker would fail page by page is refused at enqueue instead.
 *
 * Damage (TiffDamage, naming the page and the byte offset): a directory
 * outside the file or cut short by its end, a directory of no entries or more than MAX_ENTRIES,
 * a strip or tile, or the array of their offsets or byte counts, outside the file. What the worker
 * does not relocate itself (old-style JPEG, unknown field types, no strip or tile offsets or both,
 * counts that differ, the value of another tag outside the file: `planPage` returns null) is left
 * to libvips, here as there. (libtiff ignores such a value of a tag it can do without, a
 * Software or an ICC profile, with a warning, and reads the page; one it needs, it refuses.)
 * A next pointer back to a directory already read ends the chain (no page can lie beyond it).
 * Classic TIFF and BigTIFF, either byte order.
 *
 * Memory: a page's strip or tile arrays are read as the bytes they are and looked at in place
 * (an array of JS numbers costs 8 bytes a value: a page of 2-byte SHORT offsets and counts made
 * ~8x the file in memory); what a page reads is bounded by the file's size (`planPage`).
 */
import { type FileHandle } from 'node:fs/promises';

/** More entries than this in one directory is no image a scanner or libtiff writes. */
export const MAX_ENTRIES = 4096;
/** Directories walked at most, whatever a caller asks (INPUT_MAX_PAGES may be raised): a page costs a walk ~100 bytes of memory. */
export const MAX_DIRECTORIES = 1_000_000;

/** Bytes of one value of each TIFF field type (TIFF 6.0 and BigTIFF). */
const TYPE_BYTES: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8 };
/** Tags whose values are offsets to other directories or to free space: left out of a page. */
const DROPPED = new Set([288, 289, 330, 34665, 34853, 40965]);
const WIDTH = 256;
const HEIGHT = 257;
const COMPRESSION = 259;
export const STRIP_OFFSETS = 273;
const STRIP_BYTES = 279;
const TILE_OFFSETS = 324;
const TILE_BYTES = 325;
const OLD_JPEG = new Set([513, 514]);
/** Where a page's strips or tiles are: without them no reader has the page. */
const PIECE_ARRAYS = new Set([STRIP_OFFSETS, STRIP_BYTES, TILE_OFFSETS, TILE_BYTES]);

/** The file is damaged at `page` (1-based directory number), byte `at`. `message` starts `TIFF page N: `. */
export class TiffDamage extends Error {
  readonly page: number;
  readonly at: number;
  /** What is wrong, without the page. */
  readonly detail: string;
  constructor(page: number, at: number, detail: string) {
    super(`TIFF page ${page}: ${detail}`);
    this.name = 'TiffDamage';
    this.page = page;
    this.at = at;
    this.detail = detail;
  }
}

export interface Layout {
  le: boolean;
  big: boolean;
  size: number;
}

/** `length` bytes at `position` (fewer at the end of the file). */
export type ReadAt = (position: number, length: number) => Promise<Buffer>;

export async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  return buf.subarray(0, bytesRead);
}

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

export class Fields {
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

/** The TIFF's layout and first directory's offset from its header, or null when it is no TIFF. */
export async function readLayout(read: ReadAt, size: number): Promise<{ layout: Layout; first: number } | null> {
  const head = await read(0, 16);
  if (head.length < 8) return null;
  const order = head.toString('latin1', 0, 2);
  if (order !== 'II' && order !== 'MM') return null;
  const le = order === 'II';
  const magic = le ? head.readUInt16LE(2) : head.readUInt16BE(2);
  if (magic !== 42 && (magic !== 43 || head.length < 16)) return null;
  const layout = { le, big: magic === 43, size };
  return { layout, first: new Fields(layout).word(head, layout.big ? 8 : 4) };
}

export interface Directory {
  at: number;
  entries: Buffer;
  count: number;
  next: number;
}

/** A directory's first read: its count and, for all but the largest directories, its entries and next offset too. */
const DIRECTORY_READ_BYTES = 4096;

/** The directory at byte `at`, page `page`'s; TiffDamage when it lies outside the file or has no or too many entries. */
export async function readDirectory(read: ReadAt, f: Fields, at: number, page: number): Promise<Directory> {
  const { big, size } = f.layout;
  const countBytes = big ? 8 : 2;
  const entryBytes = big ? 20 : 12;
  const outside = (): TiffDamage => new TiffDamage(page, at, `its directory at byte ${at} lies outside the file (${size} bytes)`);
  if (at < (big ? 16 : 8) || at + countBytes > size) throw outside();
  let buf = await read(at, Math.min(DIRECTORY_READ_BYTES, size - at));
  const count = big ? f.u64(buf, 0) : f.u16(buf, 0);
  if (count === 0 || count > MAX_ENTRIES) throw new TiffDamage(page, at, `its directory at byte ${at} has ${count} entries (1 to ${MAX_ENTRIES} are read)`);
  const length = countBytes + count * entryBytes + (big ? 8 : 4);
  if (at + length > size) throw outside();
  if (buf.length < length) buf = await read(at, length);
  const entries = buf.subarray(countBytes, countBytes + count * entryBytes);
  return { at, entries, count, next: f.word(buf, countBytes + count * entryBytes) };
}

/**
 * The chain walked one directory at a time; what was found is kept (`offsets`), so a worker
 * walks each file once however its pages are asked for.
 */
export class ChainWalk {
  /** Byte offset of each directory found, page 1 first. */
  readonly offsets: number[] = [];
  #next: number;
  readonly #seen = new Set<number>();

  constructor(first: number) {
    this.#next = first;
  }

  /** True once the last directory was read (its next offset is 0). */
  get ended(): boolean {
    return this.#next === 0;
  }

  /** The next directory (page `offsets.length + 1`), null after the last; TiffDamage where the chain is damaged. */
  async step(read: ReadAt, f: Fields): Promise<Directory | null> {
    const at = this.#next;
    const page = this.offsets.length + 1;
    if (at === 0) return null;
    if (this.#seen.has(at)) {
      // A next pointer back to a directory already read ends the chain, as libtiff ends it (with a
      // warning): each directory has one next pointer, so no page lies beyond a loop.
      this.#next = 0;
      return null;
    }
    if (page > MAX_DIRECTORIES) throw new TiffDamage(page, at, `more than ${MAX_DIRECTORIES} directories`);
    const dir = await readDirectory(read, f, at, page);
    this.#seen.add(at);
    this.offsets.push(at);
    this.#next = dir.next;
    return dir;
  }
}

/** One entry of a directory: its value inline (`inline`) or at byte `at` of the file. */
export interface Entry {
  tag: number;
  type: number;
  count: number;
  /** Bytes of the whole value. */
  bytes: number;
  /** The value when it fits in the entry, else null. */
  inline: Buffer | null;
  /** Where the value is in the file when it is not inline, else -1. */
  at: number;
}

/** The entries of a directory, in order (`known`: of a field type in TYPE_BYTES). */
export function entriesOf(f: Fields, dir: Directory): Array<Entry & { known: boolean }> {
  const { big } = f.layout;
  const entryBytes = big ? 20 : 12;
  const room = big ? 8 : 4;
  const b = dir.entries;
  const out: Array<Entry & { known: boolean }> = [];
  for (let i = 0; i < dir.count; i++) {
    const e = i * entryBytes;
    const type = f.u16(b, e + 2);
    const count = f.word(b, e + 4);
    const unit = TYPE_BYTES[type];
    const bytes = (unit ?? 0) * count;
    const field = e + (big ? 12 : 8);
    const inside = unit !== undefined && bytes <= room;
    out.push({ tag: f.u16(b, e), type, count, bytes, inline: inside ? b.subarray(field, field + bytes) : null, at: inside || unit === undefined ? -1 : f.word(b, field), known: unit !== undefined });
  }
  return out;
}

/** A page's width and height from its entries (0 when a tag is missing). */
export function pageSize(f: Fields, entries: readonly Entry[]): { width: number; height: number } {
  let width = 0;
  let height = 0;
  for (const e of entries) {
    if ((e.tag !== WIDTH && e.tag !== HEIGHT) || !e.inline || e.count < 1 || ![3, 4, 16].includes(e.type)) continue;
    if (e.tag === WIDTH) width = f.number(e.inline, e.type, 0);
    else height = f.number(e.inline, e.type, 0);
  }
  return { width, height };
}

/** What a page's directory says of its data, its values checked to lie inside the file. */
export interface PagePlan {
  /** The entries kept for a page of its own (sub-directories and free-space lists left out). */
  entries: Entry[];
  /** Bytes of the values kept that do not fit in their entries (the piece arrays included). */
  valueBytes: number;
  offsets: Entry;
  counts: Entry;
  /** `strip` or `tile`: what the pieces are called in messages. */
  piece: 'strip' | 'tile';
}

/**
 * The page's plan, or null when the worker leaves the page to libvips (see the file comment).
 * TiffDamage when the array of its strip or tile offsets or byte counts lies outside the file.
 * Reads nothing.
 */
export function planPage(f: Fields, all: ReturnType<typeof entriesOf>, page: number): PagePlan | null {
  const { size } = f.layout;
  const entries: Entry[] = [];
  let valueBytes = 0;
  // Another tag's value outside the file: libvips decides (it reads the page without a Software
  // or an ICC profile it cannot read, refuses one without its BitsPerSample).
  let leave = false;
  for (const e of all) {
    if (OLD_JPEG.has(e.tag)) return null;
    if (DROPPED.has(e.tag) || e.type === 13 || e.type === 18) continue;
    if (!e.known) return null;
    entries.push(e);
    if (e.inline) continue;
    if (e.at + e.bytes > size) {
      if (!PIECE_ARRAYS.has(e.tag)) leave = true;
      else throw new TiffDamage(page, e.at, `the value of tag ${e.tag} at byte ${e.at} (${e.bytes} bytes) lies outside the file (${size} bytes)`);
    }
    valueBytes += e.bytes;
  }
  if (leave) return null;
  const find = (tag: number): Entry | undefined => entries.find((e) => e.tag === tag);
  const compression = find(COMPRESSION);
  if (compression?.inline && f.number(compression.inline, compression.type, 0) === 6) return null;
  // Strip and tile offsets both: libtiff reads the later (the tiles), whether TileWidth is there
  // or not; only one set would be moved, the other left naming bytes of the file.
  if (find(STRIP_OFFSETS) && find(TILE_OFFSETS)) return null;
  const offsets = find(STRIP_OFFSETS) ?? find(TILE_OFFSETS);
  const counts = offsets?.tag === STRIP_OFFSETS ? find(STRIP_BYTES) : find(TILE_BYTES);
  if (!offsets || !counts || offsets.count !== counts.count || ![3, 4, 16].includes(offsets.type) || ![3, 4, 16].includes(counts.type)) return null;
  return { entries, valueBytes, offsets, counts, piece: offsets.tag === STRIP_OFFSETS ? 'strip' : 'tile' };
}

/** A page's strip or tile offsets and byte counts as read (SHORT, LONG or LONG8 values, in place). */
export interface Pieces {
  offsets: Buffer;
  offsetsType: number;
  lengths: Buffer;
  lengthsType: number;
  count: number;
  /** Bytes of all pieces together. */
  total: number;
}

/** The value of an entry (read when it is not inline; planPage checked it lies inside the file). */
export async function valueOf(read: ReadAt, e: Entry): Promise<Buffer> {
  return e.inline ?? (await read(e.at, e.bytes));
}

/** The page's pieces, each checked to lie inside the file (TiffDamage naming the first that does not). */
export async function readPieces(read: ReadAt, f: Fields, plan: PagePlan, page: number): Promise<Pieces> {
  const { size } = f.layout;
  const offsets = plan.offsets.inline ?? (await read(plan.offsets.at, plan.offsets.bytes));
  const lengths = plan.counts.inline ?? (await read(plan.counts.at, plan.counts.bytes));
  let total = 0;
  for (let i = 0; i < plan.offsets.count; i++) {
    const at = f.number(offsets, plan.offsets.type, i);
    const length = f.number(lengths, plan.counts.type, i);
    if (at + length > size) throw new TiffDamage(page, at, `${plan.piece} ${i + 1} at byte ${at} (${length} bytes) lies outside the file (${size} bytes)`);
    total += length;
  }
  return { offsets, offsetsType: plan.offsets.type, lengths, lengthsType: plan.counts.type, count: plan.offsets.count, total };
}
