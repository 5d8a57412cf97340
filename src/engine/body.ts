/**
 * Response bodies as servers and the proxies in front of them really send them, made into the
 * text and JSON the rest of the client reads:
 *
 * - `Content-Encoding` gzip, deflate (zlib or raw) or br is decoded, whatever we asked for: a
 *   proxy with `gzip on`, or a gateway that compresses regardless, sends it unasked, and undici's
 *   `request` does not decode (fetch does). Decoding stops at `maxBytes` (a decompression bomb
 *   fails like any other body over the limit).
 * - A UTF-8 byte order mark before the JSON is dropped.
 * - Text after one complete JSON value (a proxy's appended newline-and-junk, a NUL, a second
 *   document) is ignored: the value is whole, and what follows it is not the server's answer.
 */
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import { endOfFirstValue } from '../json-errors.ts';

/** A body whose encoding could not be undone; the client reports it as ENGINE_ERROR. */
export class BodyDecodeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BodyDecodeError';
  }
}

const utf8 = new TextDecoder('utf-8'); // drops a leading BOM (ignoreBOM is false)

/** The body's bytes as text, its `Content-Encoding` (one or a comma-separated list) undone. */
export function decodeBody(bytes: Buffer, contentEncoding: string | string[] | undefined, maxBytes: number): string {
  const codings = (Array.isArray(contentEncoding) ? contentEncoding.join(',') : (contentEncoding ?? ''))
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  let out = bytes;
  // Codings are listed in the order they were applied: undo the last first.
  for (const coding of codings.reverse()) {
    if (out.length === 0) break; // an empty error body with a Content-Encoding header
    const limit = { maxOutputLength: maxBytes };
    try {
      if (coding === 'gzip' || coding === 'x-gzip') out = gunzipSync(out, limit);
      else if (coding === 'br') out = brotliDecompressSync(out, limit);
      else if (coding === 'deflate') out = inflateOrRaw(out, limit);
      else throw new BodyDecodeError(`engine answered with Content-Encoding ${JSON.stringify(coding)}, which docbatch cannot decode (gzip, deflate and br only)`);
    } catch (err) {
      if (err instanceof BodyDecodeError) throw err;
      const tooLarge = (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' || /maxOutputLength|buffer/i.test((err as Error).message);
      throw new BodyDecodeError(
        tooLarge
          ? `engine's ${coding} body decodes to more than ${maxBytes} bytes`
          : `engine's body does not decode as its Content-Encoding ${coding} says (${(err as Error).message})`,
        { cause: err },
      );
    }
  }
  return utf8.decode(out);
}

function inflateOrRaw(bytes: Buffer, limit: { maxOutputLength: number }): Buffer {
  try {
    return inflateSync(bytes, limit);
  } catch (err) {
    // "deflate" is zlib-wrapped by the standard; some servers send the raw stream.
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw err;
    return inflateRawSync(bytes, limit);
  }
}

/**
 * `JSON.parse`, forgiving a leading BOM and text after one complete JSON object or array. Throws
 * the SyntaxError of the whole text when there is no complete value at its start.
 */
export function parseJsonLenient(text: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch (err) {
    const end = endOfFirstValue(body);
    if (end === null || body.slice(end).trim() === '') throw err;
    return JSON.parse(body.slice(0, end));
  }
}
