/**
 * A request body as JSON, with its base64 image URLs left in the body's bytes.
 *
 * A page image arrives as a `data:` URL of 0.3–4 MB inside the JSON. Parsed the plain way, each
 * one is copied four times (the body into one UTF-8 string, JSON.parse's own string, the base64
 * decode, the hash) and most of the emulator's CPU went there and to collecting the garbage: a
 * 4 MB body cost ~8 ms before its image was even looked at. On a machine where the engine
 * shares the cores with the client (every benchmark here), that CPU is taken from the client.
 *
 * So the values of `"url"` and `"image_url"` keys that are simple `data:` strings (ASCII, no
 * escapes, no control characters: a string JSON.parse would take as it stands)
 * are cut out of the bytes before parsing and come back as {@link BodyDataUrl}s, which decode
 * straight from the body. Everything else parses exactly as JSON.parse parses it, and a body
 * that does not parse is parsed again whole, so its error reads as before.
 */
import { isAscii } from 'node:buffer';
import { randomBytes } from 'node:crypto';

/** A `data:` URL as it stood in the request body (ASCII bytes, no escapes). */
export class BodyDataUrl {
  readonly bytes: Buffer;

  constructor(bytes: Buffer) {
    this.bytes = bytes;
  }

  /** The part between `data:` and the first comma (media type and `;base64`); undefined without a comma. */
  get meta(): string | undefined {
    const comma = this.bytes.indexOf(0x2c);
    return comma < 0 ? undefined : this.bytes.toString('latin1', 5, comma);
  }

  /** The decoded payload of a base64 URL. */
  decodeBase64(): Buffer {
    return Buffer.from(this.bytes.toString('latin1', this.#payload()), 'base64');
  }

  /**
   * The payload decoded a slice at a time into `each` (a scratch buffer, valid during the call
   * only), so a large image never exists whole. False, and what `each` was given is to be
   * forgotten, where a slice does not decode whole: the base64 holds a character the decoder
   * skips (a space, a stray byte) or padding before its end, and slices would not start on a
   * quantum (decodeBase64 decodes it as a whole decode does).
   */
  eachDecoded(each: (bytes: Buffer) => boolean | void): boolean {
    const from = this.#payload();
    const text = this.bytes.subarray(from);
    const scratch = Buffer.allocUnsafe((SLICE / 4) * 3);
    for (let at = 0; at < text.length; at += SLICE) {
      const slice = text.toString('latin1', at, Math.min(at + SLICE, text.length));
      const n = scratch.write(slice, 'base64');
      // byteLength counts from the length and the padding at the end: any byte skipped, or a
      // '=' before the end (where the decoder stops), decodes fewer.
      if (n !== (at + SLICE < text.length ? scratch.length : Buffer.byteLength(slice, 'base64'))) return false;
      if (each(scratch.subarray(0, n)) === false) break;
    }
    return true;
  }

  #payload(): number {
    return this.bytes.indexOf(0x2c) + 1;
  }

  toString(): string {
    return this.bytes.toString('latin1');
  }

  toJSON(): string {
    return this.toString();
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const DATA = Buffer.from('"data:');
const KEYS = [Buffer.from('"url"'), Buffer.from('"image_url"')];
/** Base64 characters decoded at a time (a multiple of 4). */
const SLICE = 64 * 1024;
/** URLs shorter than this parse the plain way (nothing to gain). */
const MIN_CUT = 4096;

function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

/** The quote at `at` is not escaped (an even number of backslashes before it). */
function unescaped(body: Buffer, at: number): boolean {
  let n = 0;
  while (at - 1 - n >= 0 && body[at - 1 - n] === BACKSLASH) n++;
  return n % 2 === 0;
}

/**
 * `ascii` (all bytes below 0x80) holds a control character (below 0x20), which JSON does not
 * allow raw in a string: four bytes at a time, as this runs over every byte of every image. An
 * ASCII byte is 0x20 or more exactly when bit 5 or 6 is set: shifted left by one, bit 5 joins
 * bit 6 within the byte.
 */
function hasControl(ascii: Buffer): boolean {
  let at = 0;
  const end = ascii.length;
  while (at < end && (ascii.byteOffset + at) % 4 !== 0) if (ascii[at++]! < 0x20) return true;
  const words = Math.floor((end - at) / 4);
  const view = new Int32Array(ascii.buffer, ascii.byteOffset + at, words);
  for (let i = 0; i < words; i++) {
    const word = view[i]!;
    if (((word | (word << 1)) & 0x40404040) !== 0x40404040) return true;
  }
  for (at += words * 4; at < end; at++) if (ascii[at]! < 0x20) return true;
  return false;
}

/** The string starting at `quote` is the value of a `"url"` or `"image_url"` key. */
function isUrlValue(body: Buffer, quote: number): boolean {
  let at = quote - 1;
  while (isSpace(body[at])) at--;
  if (body[at] !== 0x3a) return false;
  at--;
  while (isSpace(body[at])) at--;
  return KEYS.some((key) => {
    const start = at + 1 - key.length;
    return start >= 0 && body.compare(key, 0, key.length, start, at + 1) === 0 && unescaped(body, start);
  });
}

/** `body` parsed as JSON; see the module comment. Throws JSON.parse's error for bad JSON. */
export function parseJsonBody(body: Buffer): unknown {
  const pieces: Buffer[] = [];
  const urls: BodyDataUrl[] = [];
  const marker = `\u0000docbatch-emulator-url-${randomBytes(8).toString('hex')}:`;
  let from = 0;
  for (let quote = body.indexOf(DATA); quote >= 0; quote = body.indexOf(DATA, quote + 1)) {
    const end = body.indexOf(QUOTE, quote + 1);
    if (end < 0) break;
    if (end - quote < MIN_CUT || !unescaped(body, quote) || !isUrlValue(body, quote)) continue;
    const url = body.subarray(quote + 1, end);
    if (url.includes(BACKSLASH) || !isAscii(url) || hasControl(url)) continue;
    pieces.push(body.subarray(from, quote), Buffer.from(JSON.stringify(`${marker}${urls.length}`)));
    urls.push(new BodyDataUrl(url));
    from = end + 1;
    quote = end;
  }
  if (urls.length === 0) return JSON.parse(body.toString('utf8'));
  pieces.push(body.subarray(from));
  try {
    return JSON.parse(Buffer.concat(pieces).toString('utf8'), (_key, value: unknown) =>
      typeof value === 'string' && value.startsWith(marker) ? urls[Number(value.slice(marker.length))] : value,
    );
  } catch {
    // Whatever is wrong with the body, say it as JSON.parse says it of the body itself.
    return JSON.parse(body.toString('utf8'));
  }
}
