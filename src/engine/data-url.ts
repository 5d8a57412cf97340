/**
 * Page images travel to the engine as base64 `data:` URLs inside the JSON body. A rendered page
 * is 0.3–4 MB of base64; joined to its prefix into one string, then copied by JSON.stringify,
 * then encoded to UTF-8, each image was copied three times on the worker's own thread (~7 ms a
 * 600 KB page: flattening the joined string 2.2 ms, JSON.stringify 3.7 ms, UTF-8 1.2 ms). A
 * `DataUrl` keeps the image's bytes and the client writes their base64 straight into the
 * request body (`jsonBody`), a slice at a time: no string of the whole image is ever made (such
 * strings, one a page, were much of the worker's garbage collection).
 *
 * Anything else that serialises a request (a log, a test) sees the URL whole (`toJSON`).
 */
import { randomBytes } from 'node:crypto';

const MIME = /^[\w.+-]+\/[\w.+-]+$/;
/** Image bytes encoded at a time (a multiple of 3: the slices' base64 joins without padding). */
const SLICE = 48 * 1024;

export class DataUrl {
  readonly mime: string;
  readonly bytes: Buffer;

  private constructor(mime: string, bytes: Buffer) {
    this.mime = mime;
    this.bytes = bytes;
  }

  /** The URL of `bytes` as `mime` (an image type such as image/png). The bytes are not copied. */
  static of(mime: string, bytes: Uint8Array): DataUrl {
    if (!MIME.test(mime)) throw new TypeError(`not a media type: ${JSON.stringify(mime)}`);
    return new DataUrl(mime, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  get prefix(): string {
    return `data:${this.mime};base64,`;
  }

  /** Characters of base64. */
  get base64Length(): number {
    return Math.ceil(this.bytes.length / 3) * 4;
  }

  /** Characters in the whole URL. */
  get length(): number {
    return this.prefix.length + this.base64Length;
  }

  /** Writes the URL into `out` at `at`; returns the bytes written (always `length`). */
  writeInto(out: Buffer, at: number): number {
    let n = out.write(this.prefix, at, 'latin1');
    for (let from = 0; from < this.bytes.length; from += SLICE) {
      n += out.write(this.bytes.toString('base64', from, Math.min(from + SLICE, this.bytes.length)), at + n, 'latin1');
    }
    return n;
  }

  toString(): string {
    return this.prefix + this.bytes.toString('base64');
  }

  toJSON(): string {
    return this.toString();
  }
}

/**
 * `body` as JSON bytes; every `DataUrl` in it is written from its parts, never joined into one
 * string. Bodies without one are plain JSON.stringify.
 */
export function jsonBody(body: unknown): string | Buffer {
  const urls: DataUrl[] = [];
  const mark = `@docbatch-image-${randomBytes(12).toString('hex')}-`;
  const text = JSON.stringify(body, function (this: Record<string, unknown>, key, value: unknown) {
    // The holder's own value: `value` has been through toJSON already.
    const own = key === '' ? value : this[key];
    if (own instanceof DataUrl) return `${mark}${urls.push(own) - 1}@`;
    return value;
  });
  if (urls.length === 0) return text;
  const pieces = text.split(new RegExp(`${mark}(\\d+)@`));
  // pieces: text, index, text, index, ..., text (the quotes around each mark stay in the text).
  let size = 0;
  for (let i = 0; i < pieces.length; i++) size += i % 2 === 0 ? Buffer.byteLength(pieces[i]!, 'utf8') : urls[Number(pieces[i])]!.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (let i = 0; i < pieces.length; i++) {
    if (i % 2 === 0) {
      at += out.write(pieces[i]!, at, 'utf8');
    } else {
      at += urls[Number(pieces[i])]!.writeInto(out, at);
    }
  }
  return out;
}
