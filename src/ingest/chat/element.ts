/**
 * One conversation's bytes → a parsed value, or an error that says where: invalid UTF-8 at a byte
 * offset, or invalid JSON at a byte offset (V8's JSON.parse does not always give a position, so
 * on failure a small validator finds it; it runs only on the failure path).
 */
import { InputError, type Place } from '../../errors.ts';
import { firstInvalidUtf8, locateJsonError } from '../../json-errors.ts';

export { firstInvalidUtf8, locateJsonError } from '../../json-errors.ts';

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes and parses one conversation. `place` is completed with the exact byte offset on error. */
export function parseElement(bytes: Buffer, offset: number, place: Place): unknown {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch (err) {
    const bad = firstInvalidUtf8(bytes);
    throw new InputError('EXPORT_BAD_UTF8', `invalid UTF-8 (byte 0x${(bytes[bad] ?? 0).toString(16).padStart(2, '0')})`, {
      cause: err,
      place: { ...place, offset: offset + bad },
    });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    const found = locateJsonError(text);
    const at = found ? Buffer.byteLength(text.slice(0, found.pos)) : 0;
    const message = found ? found.message : (err as Error).message;
    throw new InputError('EXPORT_BAD_JSON', message, { cause: err, place: { ...place, offset: offset + at } });
  }
}

