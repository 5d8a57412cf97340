/**
 * The title in a PDF's XMP metadata (`dc:title`), for documents whose Info dictionary has none
 * (PDF 2.0 deprecates the Info title). PDFium has no call for the catalog's /Metadata stream, so
 * the bytes are scanned: a `dc:title` counts only inside a stream whose dictionary says
 * `/Type /Metadata` (not XMP carried inside an embedded JPEG), and the first non-empty one wins.
 * Metadata streams are stored unfiltered by most producers (PDF/A requires it); a title only in
 * a compressed one is not found, and the report then has no title (nothing else depends on it).
 */
const OPEN = Buffer.from('<dc:title', 'latin1');
const CLOSE = Buffer.from('</dc:title>', 'latin1');
const STREAM = Buffer.from('stream', 'latin1');
/** A dc:title element longer than this is not a title. */
const MAX_ELEMENT = 8192;
/** How far before its `stream` keyword a stream's dictionary is looked for. */
const MAX_DICT = 2048;

export function xmpTitle(bytes: Uint8Array): string {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Each search goes forward through the file once, whatever the number of candidates: a file of
  // `<dc:title>` repeated (its close at the end), or of short dc:title elements outside any
  // stream, made each candidate search to the end or back to the start (quadratic: 0.8 MB took
  // the inspection child 13 s, 2 MB past its 30 s limit: PDF_CORRUPT for a readable PDF).
  const opens = new Occurrences(data, OPEN);
  const nested = new Occurrences(data, OPEN); // asked from each tag's end, apart from the loop's own
  const tagEnds = new Occurrences(data, Buffer.from('>', 'latin1'));
  const closes = new Occurrences(data, CLOSE);
  const streams = new Occurrences(data, STREAM);
  for (let at = opens.firstFrom(0); at >= 0; at = opens.firstFrom(at + OPEN.length)) {
    const after = data[at + OPEN.length];
    // <dc:title>, <dc:title xml:...>, not <dc:titles> or the like.
    if (after !== 0x3e && after !== 0x20 && after !== 0x09 && after !== 0x0a && after !== 0x0d && after !== 0x2f) continue;
    const tagEnd = tagEnds.firstFrom(at);
    if (tagEnd < 0) return '';
    if (data[tagEnd - 1] === 0x2f) continue; // <dc:title/>: empty
    const end = closes.firstFrom(tagEnd);
    if (end < 0) return '';
    const next = nested.firstFrom(tagEnd);
    if ((next >= 0 && next < end) || end - at > MAX_ELEMENT || !inMetadataStream(data, streams.lastUpTo(at))) continue;
    const inner = data.subarray(tagEnd + 1, end).toString('utf8');
    const items = [...inner.matchAll(/<rdf:li\b[^>]*?>([^<]*)<\/rdf:li>/g)].map((m) => m[1]!);
    // Without rdf:Alt / rdf:li, a plain text value (as some producers write it).
    for (const text of items.length > 0 ? items : inner.includes('<') ? [] : [inner]) {
      const title = decodeXml(text).trim();
      if (title !== '') return title;
    }
  }
  return '';
}

/**
 * Where `needle` occurs in `data`, asked for at positions that never decrease (the caller's
 * candidates go forward): each occurrence is found once, so all questions together cost one pass.
 */
class Occurrences {
  readonly #data: Buffer;
  readonly #needle: Buffer;
  #last = -1;
  #next: number;

  constructor(data: Buffer, needle: Buffer) {
    this.#data = data;
    this.#needle = needle;
    this.#next = data.indexOf(needle);
  }

  /** The first occurrence at or after `pos`; -1 when there is none. */
  firstFrom(pos: number): number {
    while (this.#next >= 0 && this.#next < pos) {
      this.#last = this.#next;
      this.#next = this.#data.indexOf(this.#needle, this.#next + 1);
    }
    return this.#next;
  }

  /** The last occurrence at or before `pos`; -1 when there is none. */
  lastUpTo(pos: number): number {
    this.firstFrom(pos + 1);
    return this.#last;
  }
}

/** Whether a candidate whose nearest `stream` keyword before it is at `keyword` lies inside a metadata stream. */
function inMetadataStream(data: Buffer, keyword: number): boolean {
  // The nearest "stream" before it is an "endstream": it lies between objects.
  if (keyword < 0 || (keyword >= 3 && data.toString('latin1', keyword - 3, keyword) === 'end')) return false;
  const before = data.toString('latin1', Math.max(0, keyword - MAX_DICT), keyword);
  const dict = before.slice(before.lastIndexOf('obj') + 1);
  return /\/Type\s*\/Metadata\b/.test(dict) && !/\/Subtype\s*\/Image\b/.test(dict);
}

function decodeXml(text: string): string {
  return text.replace(/&(?:#x([0-9a-f]+)|#(\d+)|(amp|lt|gt|quot|apos));/gi, (all, hex: string | undefined, dec: string | undefined, name: string | undefined) => {
    if (name) return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[name.toLowerCase()] ?? all;
    const code = hex ? parseInt(hex, 16) : Number(dec);
    return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : all;
  });
}
