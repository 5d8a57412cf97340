/**
 * The size of a PNG or JPEG read from its first bytes, as sharp's metadata() would report it,
 * without handing the whole image to sharp (src/emulator/body-json.ts says why). Anything it
 * cannot read for certain (another format, a JPEG whose frame header lies past `head`, a damaged
 * PNG header) is undefined, and the caller asks sharp.
 */
import { crc32 } from 'node:zlib';

export interface ImageHead {
  format: 'png' | 'jpeg';
  width: number;
  height: number;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function imageHead(head: Buffer): ImageHead | undefined {
  if (head.length >= 33 && head.subarray(0, 8).equals(PNG_SIGNATURE)) return pngHead(head);
  if (head.length >= 4 && head[0] === 0xff && head[1] === 0xd8) return jpegHead(head);
  return undefined;
}

/** IHDR is the first chunk: length 13, its CRC checked as libspng does. */
function pngHead(head: Buffer): ImageHead | undefined {
  if (head.readUInt32BE(8) !== 13 || head.toString('latin1', 12, 16) !== 'IHDR') return undefined;
  if (crc32(head.subarray(12, 29)) !== head.readUInt32BE(29)) return undefined;
  const width = head.readUInt32BE(16);
  const height = head.readUInt32BE(20);
  return width > 0 && height > 0 ? { format: 'png', width, height } : undefined;
}

/** The first start-of-frame marker (SOF0–SOF15 but DHT, JPG and DAC) gives the size. */
function jpegHead(head: Buffer): ImageHead | undefined {
  let at = 2;
  while (at + 9 <= head.length) {
    if (head[at] !== 0xff) return undefined;
    const marker = head[at + 1]!;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2; // markers without a length
      continue;
    }
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const height = head.readUInt16BE(at + 5);
      const width = head.readUInt16BE(at + 7);
      return width > 0 && height > 0 ? { format: 'jpeg', width, height } : undefined;
    }
    if (marker === 0xd9 || marker === 0xda) return undefined; // no frame header before the scan
    at += 2 + head.readUInt16BE(at + 2);
  }
  return undefined;
}
