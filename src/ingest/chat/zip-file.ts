/**
 * A .zip file as yauzl reads it, through windows of the file: yauzl reads each central-directory
 * record with two positional reads of its own (46 bytes, then the name), one round trip to the
 * thread pool each. An export holding 4,000 images took ~2 s a pass over its directory, and
 * enqueue makes three (find the conversations entry, detect its format, split it): 10,000 entries
 * held the command ~16 s. Here a record is read from a window already in memory (the directory is
 * contiguous); entry data still streams from the file.
 */
import { close, fstat, open, read } from 'node:fs';
import { promisify } from 'node:util';
import { Readable } from 'node:stream';
import yauzl from 'yauzl';

/** Bytes read at a time, and windows kept (the end-of-directory record is read apart from the directory). */
const WINDOW = 256 * 1024;
const WINDOWS_KEPT = 4;
/** Bytes an entry's data is read by. */
const STREAM_PIECE = 64 * 1024;

type ReadCallback = (err: Error | null, bytesRead?: number) => void;

class WindowedFile extends yauzl.RandomAccessReader {
  readonly #fd: number;
  readonly #size: number;
  #windows: Array<{ at: number; bytes: Buffer }> = [];

  constructor(fd: number, size: number) {
    super();
    this.#fd = fd;
    this.#size = size;
  }

  /** The bytes [start, end) by positional reads of the same descriptor (fs streams close theirs when destroyed). */
  override _readStreamForRange(start: number, end: number): Readable {
    const fd = this.#fd;
    let at = start;
    return new Readable({
      read(wanted) {
        const n = Math.min(Math.max(wanted, STREAM_PIECE), end - at);
        if (n <= 0) return void this.push(null);
        const piece = Buffer.allocUnsafe(n);
        read(fd, piece, 0, n, at, (err, bytesRead) => {
          if (err) return void this.destroy(err);
          if (bytesRead === 0) return void this.push(null); // shorter than the directory says: yauzl reports it
          at += bytesRead;
          this.push(piece.subarray(0, bytesRead));
        });
      },
    });
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: ReadCallback): void {
    const end = Math.min(position + length, this.#size);
    const copy = (w: { at: number; bytes: Buffer }) => {
      const n = Math.max(0, Math.min(end, w.at + w.bytes.length) - position);
      if (n > 0) w.bytes.copy(buffer, offset, position - w.at, position - w.at + n);
      callback(null, n);
    };
    // Answered later, never before returning, as a read of the file is (yauzl counts on it).
    // Past the end (a directory naming offsets beyond the file) nothing is read: yauzl says EOF.
    if (position >= end) return queueMicrotask(() => callback(null, 0));
    const hit = this.#windows.find((w) => position >= w.at && end <= w.at + w.bytes.length);
    if (hit) return queueMicrotask(() => copy(hit));
    const want = Math.min(Math.max(WINDOW, length), this.#size - position);
    const bytes = Buffer.allocUnsafe(want);
    read(this.#fd, bytes, 0, want, position, (err, bytesRead) => {
      if (err) return callback(err);
      const window = { at: position, bytes: bytes.subarray(0, bytesRead) };
      this.#windows.push(window);
      if (this.#windows.length > WINDOWS_KEPT) this.#windows.shift();
      copy(window);
    });
  }

  override close(callback: (err: Error | null) => void): void {
    this.#windows = [];
    close(this.#fd, (err) => callback(err ?? null));
  }
}

/** yauzl.openPromise(path, options), reading the archive's directory through windows. */
export async function openZipFile(path: string, options: yauzl.Options): Promise<yauzl.ZipFile> {
  const fd = await promisify(open)(path, 'r');
  let size: number;
  try {
    size = (await promisify(fstat)(fd)).size;
  } catch (err) {
    close(fd, () => undefined);
    throw err;
  }
  const reader = new WindowedFile(fd, size);
  try {
    return await yauzl.fromRandomAccessReaderPromise(reader, size, { ...options, autoClose: false });
  } catch (err) {
    // The archive never opened: nothing holds the reader, so its file is closed here.
    close(fd, () => undefined);
    throw err;
  }
}
