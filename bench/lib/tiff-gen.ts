/**
 * A multi-page TIFF of uncompressed 8-bit grey pages, each of its own pixels (a ramp shifted by
 * the page number), in either byte order, its strips after its directories. Returns the bytes
 * and where each directory is, so a test can damage the chain. For benchmarks and tests: a fax
 * archive's shape (many small pages) in milliseconds, no encoder needed.
 */
export interface TiffGenOptions {
  pages: number;
  width?: number;
  height?: number;
  /** @defaultValue 'II' (little-endian) */
  order?: 'II' | 'MM';
  /** Rows in each strip (several strips a page when below the height). @defaultValue the height */
  rowsPerStrip?: number;
}

export function generateTiff(o: TiffGenOptions): { bytes: Buffer; directories: number[]; strips: number[][] } {
  const width = o.width ?? 32;
  const height = o.height ?? 32;
  const rows = Math.min(o.rowsPerStrip ?? height, height);
  const stripsPerPage = Math.ceil(height / rows);
  const le = (o.order ?? 'II') === 'II';
  const entries = 9;
  // Strip offsets and byte counts live out of line (after each directory) when a page has several strips.
  const arrays = stripsPerPage > 1 ? 2 * 4 * stripsPerPage : 0;
  const dirBytes = 2 + entries * 12 + 4 + arrays;
  const pageBytes = width * height;
  const dataAt = 8 + dirBytes * o.pages;
  const out = Buffer.alloc(dataAt + pageBytes * o.pages);
  const u16 = (v: number, at: number) => (le ? out.writeUInt16LE(v, at) : out.writeUInt16BE(v, at));
  const u32 = (v: number, at: number) => (le ? out.writeUInt32LE(v >>> 0, at) : out.writeUInt32BE(v >>> 0, at));
  out.write(le ? 'II' : 'MM', 0, 'latin1');
  u16(42, 2);
  u32(8, 4);
  const directories: number[] = [];
  const strips: number[][] = [];
  for (let p = 0; p < o.pages; p++) {
    const at = 8 + p * dirBytes;
    directories.push(at);
    const pixels = dataAt + p * pageBytes;
    const offsets = Array.from({ length: stripsPerPage }, (_, s) => pixels + s * rows * width);
    const counts = offsets.map((_, s) => Math.min(rows, height - s * rows) * width);
    strips.push(offsets);
    const arraysAt = at + 2 + entries * 12 + 4;
    const fields: Array<[number, number, number, number]> = [
      [256, 4, 1, width],
      [257, 4, 1, height],
      [258, 3, 1, 8],
      [259, 3, 1, 1],
      [262, 3, 1, 1],
      [273, 4, stripsPerPage, stripsPerPage > 1 ? arraysAt : (offsets[0] as number)],
      [277, 3, 1, 1],
      [278, 4, 1, rows],
      [279, 4, stripsPerPage, stripsPerPage > 1 ? arraysAt + 4 * stripsPerPage : (counts[0] as number)],
    ];
    u16(entries, at);
    fields.forEach(([tag, type, count, value], k) => {
      const e = at + 2 + k * 12;
      u16(tag, e);
      u16(type, e + 2);
      u32(count, e + 4);
      if (type === 3) u16(value, e + 8);
      else u32(value, e + 8);
    });
    u32(p + 1 < o.pages ? at + dirBytes : 0, at + 2 + entries * 12);
    if (stripsPerPage > 1) {
      offsets.forEach((v, s) => u32(v, arraysAt + 4 * s));
      counts.forEach((v, s) => u32(v, arraysAt + 4 * (stripsPerPage + s)));
    }
    for (let i = 0; i < pageBytes; i++) out[pixels + i] = (i + p * 17) % 256;
  }
  return { bytes: out, directories, strips };
}

/**
 * A little-endian `generateTiff` file of one strip a page, each page's XResolution (RATIONAL: 8
 * bytes, never inline) pointing past the end of the file: entry 7 (RowsPerStrip, optional with
 * one strip) takes StripByteCounts, entry 8 the XResolution; tags stay sorted. libtiff does
 * without such a value (a warning) and reads the pages.
 */
export function xResolutionOutside(bytes: Buffer, directories: number[]): Buffer {
  const out = Buffer.from(bytes);
  for (const at of directories) {
    out.copy(out, at + 2 + 7 * 12, at + 2 + 8 * 12, at + 2 + 9 * 12);
    const e = at + 2 + 8 * 12;
    out.writeUInt16LE(282, e);
    out.writeUInt16LE(5, e + 2);
    out.writeUInt32LE(1, e + 4);
    out.writeUInt32LE(bytes.length + 1000, e + 8);
  }
  return out;
}
