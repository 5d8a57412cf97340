/**
 * The title in a PDF's XMP metadata (`dc:title`), for documents whose Info dictionary has none
 * (PDF 2.0 deprecates the Info title; PDF/A keeps the metadata stream unfiltered). PDFium has
 * no call for the catalog's /Metadata stream, so the bytes are scanned for uncompressed XMP:
 * the first non-empty `dc:title` entry wins. A title only in a compressed metadata stream is not
 * found (the report then has no title; nothing else depends on it).
 */
const OPEN = Buffer.from('<dc:title', 'latin1');
const CLOSE = Buffer.from('</dc:title>', 'latin1');
/** A dc:title element longer than this is not a title. */
const MAX_ELEMENT = 8192;

export function xmpTitle(bytes: Uint8Array): string {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = data.indexOf(OPEN); at >= 0; at = data.indexOf(OPEN, at + OPEN.length)) {
    const end = data.indexOf(CLOSE, at);
    if (end < 0) return '';
    if (end - at > MAX_ELEMENT) continue;
    const element = data.subarray(at, end).toString('utf8');
    for (const m of element.matchAll(/<rdf:li\b[^>]*?>([^<]*)<\/rdf:li>/g)) {
      const title = decodeXml(m[1]!).trim();
      if (title !== '') return title;
    }
  }
  return '';
}

function decodeXml(text: string): string {
  return text.replace(/&(?:#x([0-9a-f]+)|#(\d+)|(amp|lt|gt|quot|apos));/gi, (all, hex: string | undefined, dec: string | undefined, name: string | undefined) => {
    if (name) return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[name.toLowerCase()] ?? all;
    const code = hex ? parseInt(hex, 16) : Number(dec);
    return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : all;
  });
}
