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
  for (let at = data.indexOf(OPEN); at >= 0; at = data.indexOf(OPEN, at + OPEN.length)) {
    const after = data[at + OPEN.length];
    // <dc:title>, <dc:title xml:...>, not <dc:titles> or the like.
    if (after !== 0x3e && after !== 0x20 && after !== 0x09 && after !== 0x0a && after !== 0x0d && after !== 0x2f) continue;
    const tagEnd = data.indexOf(0x3e, at);
    if (tagEnd < 0) return '';
    if (data[tagEnd - 1] === 0x2f) continue; // <dc:title/>: empty
    const end = data.indexOf(CLOSE, tagEnd);
    if (end < 0) return '';
    const next = data.indexOf(OPEN, tagEnd);
    if ((next >= 0 && next < end) || end - at > MAX_ELEMENT || !inMetadataStream(data, at)) continue;
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

/** Whether `at` lies inside a stream whose dictionary is a metadata stream's. */
function inMetadataStream(data: Buffer, at: number): boolean {
  const keyword = data.lastIndexOf(STREAM, at);
  // The nearest "stream" before it is an "endstream": `at` lies between objects.
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
