/**
 * The sidecar: every chunk of one export as one JSON line, written through a buffered stream
 * with backpressure, hashed as it is written. Unit i is line i; its byte range (without the
 * newline) is returned so a job can carry `{offset, length}` instead of the text.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';

/** Lines are gathered into writes of about this size. */
const BATCH_BYTES = 1 << 20;

export interface SidecarSummary {
  bytes: number;
  sha256: string;
}

export class SidecarWriter {
  readonly path: string;
  readonly #stream: WriteStream;
  readonly #hash = createHash('sha256');
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #offset = 0;
  #closing: Promise<unknown> | undefined;
  #failure: Error | undefined;

  constructor(path: string) {
    this.path = path;
    // flush: fsync before close, so a sidecar that was reported written is on disk.
    this.#stream = createWriteStream(path, { highWaterMark: 4 * BATCH_BYTES, flush: true });
    this.#stream.on('error', (err) => {
      this.#failure ??= err;
    });
  }

  /** Appends one line; returns its byte range. */
  write(record: unknown): { offset: number; length: number } {
    if (this.#failure) throw this.#failure;
    const line = Buffer.from(`${JSON.stringify(record)}\n`);
    const range = { offset: this.#offset, length: line.length - 1 };
    this.#offset += line.length;
    this.#pending.push(line);
    this.#pendingBytes += line.length;
    if (this.#pendingBytes >= BATCH_BYTES) this.#flush();
    return range;
  }

  /** Resolves when the stream has room again (at once if it has room now). */
  async drained(): Promise<void> {
    if (this.#failure) throw this.#failure;
    if (this.#stream.writableNeedDrain) await once(this.#stream, 'drain');
  }

  /** Writes what is left, fsyncs and closes. */
  async finish(): Promise<SidecarSummary> {
    this.#flush();
    this.#stream.end();
    this.#closing ??= finished(this.#stream);
    await this.#closing;
    if (this.#failure) throw this.#failure;
    return { bytes: this.#offset, sha256: this.#hash.digest('hex') };
  }

  /** Stops writing and deletes the partial file. Safe to call more than once. */
  async abort(): Promise<void> {
    if (!this.#stream.destroyed) this.#stream.destroy();
    await finished(this.#stream).catch(() => undefined);
    await rm(this.path, { force: true });
  }

  #flush(): void {
    if (this.#pendingBytes === 0) return;
    const buf = this.#pending.length === 1 ? (this.#pending[0] as Buffer) : Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#hash.update(buf);
    this.#stream.write(buf);
  }
}
