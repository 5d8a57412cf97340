/**
 * A chat export's chunks as stored for the workers: the sidecar blob (one JSON line per chunk,
 * written by src/ingest/chat/split.ts) and its index blob (24 bytes per chunk unit, written at
 * enqueue): where a chunk's line is, and which conversation summary it belongs to. Jobs carry
 * only a unit number; the worker, the writer and the reconciler find the rest here.
 *
 *   bytes 0-7    offset of the line in the sidecar (uint64 BE)
 *   bytes 8-11   length of the line without its newline (uint32 BE)
 *   bytes 12-15  the unit summarizing its conversation from its chunks, or 0xFFFFFFFF for none
 *   bytes 16-19  the conversation's first chunk unit
 *   bytes 20-23  the conversation's chunk count
 */
import type { ChunkGroup } from '../../queues/contracts.ts';
import type { BlobStore } from './blobs.ts';

export const INDEX_ENTRY_BYTES = 24;
const NONE = 0xffffffff;

/** One line of the sidecar. */
export interface SidecarChunk {
  conversation_id: string;
  title: string;
  /** 0-based position of this chunk in its conversation. */
  chunk: number;
  /** How many chunks the conversation has. */
  chunks: number;
  /** Messages this chunk holds (a split message is listed in each chunk holding a part). */
  message_ids: string[];
  /** Messages repeated from the previous chunk for context; never also in message_ids. */
  overlap_message_ids: string[];
  tokens: number;
  text: string;
  create_time: number | null;
}

export interface IndexEntry {
  offset: number;
  length: number;
  /** The conversation's summary unit, or null when it has none. */
  reduce: number | null;
  first: number;
  count: number;
}

export function encodeIndex(entries: IndexEntry[]): Buffer {
  const buf = Buffer.alloc(entries.length * INDEX_ENTRY_BYTES);
  entries.forEach((e, i) => {
    const at = i * INDEX_ENTRY_BYTES;
    buf.writeBigUInt64BE(BigInt(e.offset), at);
    buf.writeUInt32BE(e.length, at + 8);
    buf.writeUInt32BE(e.reduce ?? NONE, at + 12);
    buf.writeUInt32BE(e.first, at + 16);
    buf.writeUInt32BE(e.count, at + 20);
  });
  return buf;
}

export function decodeEntry(buf: Buffer, at = 0): IndexEntry {
  const reduce = buf.readUInt32BE(at + 12);
  return {
    offset: Number(buf.readBigUInt64BE(at)),
    length: buf.readUInt32BE(at + 8),
    reduce: reduce === NONE ? null : reduce,
    first: buf.readUInt32BE(at + 16),
    count: buf.readUInt32BE(at + 20),
  };
}

/** The group a chunk's entry belongs to (null when its conversation has no summary unit). */
export function groupOf(entry: IndexEntry, head: IndexEntry): ChunkGroup | null {
  if (entry.reduce === null) return null;
  return { reduce: entry.reduce, first: entry.first, count: entry.count, head: [head.offset, head.length] };
}

/** Reads index entries and sidecar lines, keeping whole indexes of recent documents in memory. */
export class ChunkReader {
  private readonly blobs: BlobStore;
  private readonly indexes = new Map<string, Buffer>();
  private cachedBytes = 0;
  private readonly maxCacheBytes: number;

  constructor(blobs: BlobStore, maxCacheBytes = 64 * 1024 * 1024) {
    this.blobs = blobs;
    this.maxCacheBytes = maxCacheBytes;
  }

  private async indexOf(index: string, signal?: AbortSignal): Promise<Buffer> {
    let buf = this.indexes.get(index);
    if (buf) {
      this.indexes.delete(index);
      this.indexes.set(index, buf);
      return buf;
    }
    buf = await this.blobs.readAll(index, signal ? { signal } : {});
    this.indexes.set(index, buf);
    this.cachedBytes += buf.length;
    while (this.cachedBytes > this.maxCacheBytes && this.indexes.size > 1) {
      const [oldest, old] = this.indexes.entries().next().value!;
      this.indexes.delete(oldest);
      this.cachedBytes -= old.length;
    }
    return buf;
  }

  async entry(index: string, unit: number, signal?: AbortSignal): Promise<IndexEntry> {
    const buf = await this.indexOf(index, signal);
    const at = unit * INDEX_ENTRY_BYTES;
    if (at + INDEX_ENTRY_BYTES > buf.length) throw new RangeError(`chunk index ${index.slice(0, 12)} has no unit ${unit}`);
    return decodeEntry(buf, at);
  }

  /** The conversation group of a chunk unit (null when its conversation has no summary unit). */
  async group(index: string, unit: number): Promise<ChunkGroup | null> {
    const entry = await this.entry(index, unit);
    if (entry.reduce === null) return null;
    return groupOf(entry, await this.entry(index, entry.first));
  }

  async line(sidecar: string, offset: number, length: number, signal?: AbortSignal): Promise<SidecarChunk> {
    const bytes = await this.blobs.read(sidecar, offset, length, signal ? { signal } : {});
    return JSON.parse(bytes.toString('utf8')) as SidecarChunk;
  }
}
