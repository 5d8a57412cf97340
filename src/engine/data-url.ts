/**
 * Page images travel to the engine as base64 `data:` URLs inside the JSON body. A rendered page
 * is 0.3–1 MB of base64; joined to its prefix into one string, then copied by JSON.stringify,
 * then encoded to UTF-8, each image was copied three times on the worker's own thread (~7 ms a
 * 600 KB page: flattening the joined string 2.2 ms, JSON.stringify 3.7 ms, UTF-8 1.2 ms). A
 * `DataUrl` keeps the base64 text apart from its prefix and the client writes both straight
 * into the request body (`jsonBody`): one copy into a buffer, 0.02 ms.
 *
 * Anything else that serialises a request (a log, a test) sees the URL whole (`toJSON`).
 */
import { randomBytes } from 'node:crypto';

const MIME = /^[\w.+-]+\/[\w.+-]+$/;

export class DataUrl {
  readonly mime: string;
  /** Base64 text, as Buffer#toString('base64') makes it: nothing in it needs escaping in JSON. */
  readonly base64: string;

  private constructor(mime: string, base64: string) {
    this.mime = mime;
    this.base64 = base64;
  }

  /** The URL of `bytes` as `mime` (an image type such as image/png). */
  static of(mime: string, bytes: Uint8Array): DataUrl {
    if (!MIME.test(mime)) throw new TypeError(`not a media type: ${JSON.stringify(mime)}`);
    return new DataUrl(mime, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'));
  }

  get prefix(): string {
    return `data:${this.mime};base64,`;
  }

  /** Characters in the whole URL. */
  get length(): number {
    return this.prefix.length + this.base64.length;
  }

  toString(): string {
    return this.prefix + this.base64;
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
      const url = urls[Number(pieces[i])]!;
      at += out.write(url.prefix, at, 'latin1');
      at += out.write(url.base64, at, 'latin1');
    }
  }
  return out;
}
