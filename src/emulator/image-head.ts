/**
 * The size of a PNG or JPEG read from its first bytes, as sharp's metadata() would report it,
 * without handing the whole image to sharp (src/emulator/body-json.ts says why). Only a header
 * sharp would read the same way is taken: everything it cannot vouch for (another format, a
 * header past `head` or cut short within it, a field or process sharp refuses, a chunk whose
 * CRC is wrong) is undefined, and the caller asks sharp, which then says what it says.
 */
import { crc32 } from 'node:zlib';

export interface ImageHead {
  format: 'png' | 'jpeg';
  width: number;
  height: number;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** PNG colour type → the bit depths it allows (PNG spec, 11.2.2: libpng refuses the others). */
const PNG_DEPTHS: Readonly<Record<number, readonly number[]>> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const PNG_MAX_SIDE = 2 ** 31 - 1;

export function imageHead(head: Buffer): ImageHead | undefined {
  if (head.length >= 33 && head.subarray(0, 8).equals(PNG_SIGNATURE)) return pngHead(head);
  if (head.length >= 4 && head[0] === 0xff && head[1] === 0xd8) return jpegHead(head);
  return undefined;
}

/**
 * IHDR is the first chunk: length 13, its fields ones libpng takes. libpng reads every chunk up to
 * the first IDAT before it answers (a PNG cut short there, a damaged chunk or a palette image
 * without PLTE is refused): so must these, within `head`, each with its CRC right.
 */
function pngHead(head: Buffer): ImageHead | undefined {
  if (head.readUInt32BE(8) !== 13 || head.toString('latin1', 12, 16) !== 'IHDR') return undefined;
  const width = head.readUInt32BE(16);
  const height = head.readUInt32BE(20);
  const [depth, colour, compression, filter, interlace] = head.subarray(24, 29);
  if (width < 1 || height < 1 || width > PNG_MAX_SIDE || height > PNG_MAX_SIDE) return undefined;
  if (!PNG_DEPTHS[colour!]?.includes(depth!) || compression !== 0 || filter !== 0 || (interlace !== 0 && interlace !== 1)) return undefined;
  let palette = false;
  for (let at = 8; at + 12 <= head.length; ) {
    const length = head.readUInt32BE(at);
    const type = head.toString('latin1', at + 4, at + 8);
    if (length > PNG_MAX_SIDE || !/^[A-Za-z]{4}$/.test(type) || at + 12 + length > head.length) return undefined;
    if (crc32(head.subarray(at + 4, at + 8 + length)) !== head.readUInt32BE(at + 8 + length)) return undefined;
    if (type === 'IDAT') return colour === 3 && !palette ? undefined : { format: 'png', width, height };
    if (type === 'IEND' || (type === 'IHDR' && at !== 8)) return undefined;
    if (type === 'PLTE') palette = true;
    at += 12 + length;
  }
  return undefined;
}

/**
 * The frame header (SOF0–SOF2 only: baseline, extended and progressive, 8 bits, 1, 3 or 4
 * components) gives the size; libjpeg reads on to the start of scan before it answers, so the
 * markers up to it must be whole within `head`. Other processes (lossless, arithmetic,
 * hierarchical), other precisions, and anything odd are sharp's to judge.
 */
function jpegHead(head: Buffer): ImageHead | undefined {
  let size: ImageHead | undefined;
  let at = 2;
  while (at + 4 <= head.length) {
    if (head[at] !== 0xff) return undefined;
    const marker = head[at + 1]!;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0xd9 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) return undefined; // not before a scan
    const length = head.readUInt16BE(at + 2);
    if (length < 2 || at + 2 + length > head.length) return undefined;
    if (marker === 0xda) return size; // start of scan: undefined if no frame header came first
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (size || marker > 0xc2 || length < 8) return undefined;
      const components = head[at + 9]!;
      const height = head.readUInt16BE(at + 5);
      const width = head.readUInt16BE(at + 7);
      if (head[at + 4] !== 8 || ![1, 3, 4].includes(components) || length !== 8 + 3 * components || width < 1 || height < 1) return undefined;
      size = { format: 'jpeg', width, height };
    }
    at += 2 + length;
  }
  return undefined;
}
