/**
 * A .zip file opened for yauzl through a reader that serves its small reads from a block of the
 * file read ahead. yauzl reads the central directory an entry at a time, each entry in two reads
 * (46 bytes, then its name and extra fields): through plain positional reads an archive of
 * 200,000 entries took 400,000 system calls per walk of its directory; read ahead in blocks of
 * BLOCK_BYTES, a directory of 20 MB takes 20. Entry data (large, read once) streams past the block.
 */
import { close, fstat, open, read } from 'node:fs';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import yauzl from 'yauzl';

/** How much of the file one read brings in for the small reads to come. */
const BLOCK_BYTES = 1 << 20;
/** Entry data is read in pieces of this size. */
const STREAM_BYTES = 256 * 1024;

class BlockReader extends yauzl.RandomAccessReader {
  readonly #fd: number;
  readonly #size: number;
  #block: Buffer = Buffer.alloc(0);
  #blockAt = 0;

  constructor(fd: number, size: number) {
    super();
    this.#fd = fd;
    this.#size = size;
  }

  /** Positional reads of [start, end): the fd stays open (it is closed by `close`, when yauzl lets go of it). */
  override _readStreamForRange(start: number, end: number): Readable {
    const fd = this.#fd;
    let at = start;
    return new Readable({
      highWaterMark: STREAM_BYTES,
      read(wanted) {
        const length = Math.min(wanted, end - at);
        if (length <= 0) return void this.push(null);
        const piece = Buffer.allocUnsafe(length);
        read(fd, piece, 0, length, at, (err, bytesRead) => {
          if (err) return void this.destroy(err);
          if (bytesRead === 0) return void this.push(null);
          at += bytesRead;
          this.push(piece.subarray(0, bytesRead));
        });
      },
    });
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null, bytesRead?: number) => void): void {
    const served = (block: Buffer, at: number): number => block.copy(buffer, offset, position - at, Math.min(block.length, position - at + length));
    if (position >= this.#blockAt && position + length <= this.#blockAt + this.#block.length) {
      const n = served(this.#block, this.#blockAt);
      queueMicrotask(() => callback(null, n));
      return;
    }
    const block = Buffer.allocUnsafe(Math.max(0, Math.min(Math.max(length, BLOCK_BYTES), this.#size - position)));
    read(this.#fd, block, 0, block.length, position, (err, bytesRead) => {
      if (err) return callback(err);
      const got = block.subarray(0, bytesRead);
      this.#block = got;
      this.#blockAt = position;
      callback(null, served(got, position));
    });
  }

  override close(callback: (err: Error | null) => void): void {
    close(this.#fd, callback);
  }
}

/** yauzl's ZipFile over `path`, read through a BlockReader. Options as yauzl.open's. */
export async function openZipFile(path: string, options: yauzl.Options): Promise<yauzl.ZipFile> {
  const fd = await promisify(open)(path, 'r');
  try {
    const { size } = await promisify(fstat)(fd);
    return await yauzl.fromRandomAccessReaderPromise(new BlockReader(fd, size), size, options);
  } catch (err) {
    close(fd, () => undefined);
    throw err;
  }
}
