/**
 * A tiny PDF writer for our own samples and test fixtures: pages of Helvetica text, optionally a
 * JPEG image and a /Rotate, uncompressed content streams, a classic xref table. Only what the
 * demo and the tests need; not a general PDF library.
 */

export interface PdfPage {
  /** Lines of text (WinAnsi: keep to Latin-1). */
  lines: string[];
  /** [width, height] in points. @defaultValue [612, 792] */
  size?: [number, number];
  rotate?: 0 | 90 | 180 | 270;
  /** Draw the document's image at [x, y, width, height]. */
  image?: [number, number, number, number];
  fontSize?: number;
  /** Where the first line starts. @defaultValue [72, height - 72] */
  at?: [number, number];
}

export interface PdfSpec {
  pages: PdfPage[];
  title?: string;
  /** One JPEG for the whole document (drawn where a page asks for it). */
  jpeg?: { data: Buffer; width: number; height: number };
}

function pdfString(s: string): string {
  return `(${s.replace(/[\\()]/g, (c) => `\\${c}`)})`;
}

function content(page: PdfPage): string {
  const [, height] = page.size ?? [612, 792];
  const size = page.fontSize ?? 12;
  const [x, y] = page.at ?? [72, height - 72];
  let out = '';
  if (page.image) out += `q ${page.image[2]} 0 0 ${page.image[3]} ${page.image[0]} ${page.image[1]} cm /Im1 Do Q\n`;
  if (page.lines.length > 0) {
    const body = page.lines.map((l, i) => `${i === 0 ? '' : 'T* '}${pdfString(l)} Tj`).join('\n');
    out += `BT /F1 ${size} Tf ${Math.round(size * 1.3)} TL ${x} ${y} Td\n${body}\nET\n`;
  }
  return out;
}

export function writePdf(spec: PdfSpec): Buffer {
  const objects: Array<string | Buffer> = [];
  const add = (body: string | Buffer) => objects.push(body);
  add(''); // 1 catalog
  add(''); // 2 pages
  add('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>'); // 3
  const hasImage = spec.jpeg !== undefined;
  if (spec.jpeg) {
    const head = `<< /Type /XObject /Subtype /Image /Width ${spec.jpeg.width} /Height ${spec.jpeg.height} /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode /Length ${spec.jpeg.data.length} >>\nstream\n`;
    add(Buffer.concat([Buffer.from(head, 'latin1'), spec.jpeg.data, Buffer.from('\nendstream', 'latin1')])); // 4
  }
  const pageIds: number[] = [];
  for (const page of spec.pages) {
    const c = content(page);
    add(`<< /Length ${Buffer.byteLength(c, 'latin1')} >>\nstream\n${c}endstream`);
    const contentId = objects.length;
    const [w, h] = page.size ?? [612, 792];
    const xobj = hasImage ? ' /XObject << /Im1 4 0 R >>' : '';
    add(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${w} ${h}]${page.rotate ? ` /Rotate ${page.rotate}` : ''} /Resources << /Font << /F1 3 0 R >>${xobj} >> /Contents ${contentId} 0 R >>`);
    pageIds.push(objects.length);
  }
  objects[0] = '<< /Type /Catalog /Pages 2 0 R >>';
  objects[1] = `<< /Type /Pages /Kids [${pageIds.map((p) => `${p} 0 R`).join(' ')}] /Count ${pageIds.length} >>`;
  add(`<< /Title ${pdfString(spec.title ?? 'docbatch')} /Producer (docbatch pdf-writer) >>`);
  const info = objects.length;

  const chunks: Buffer[] = [Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  let offset = chunks[0]!.length;
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(offset);
    const buf = Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`, 'latin1'), typeof body === 'string' ? Buffer.from(body, 'latin1') : body, Buffer.from('\nendobj\n', 'latin1')]);
    chunks.push(buf);
    offset += buf.length;
  });
  const xref = [`xref\n0 ${objects.length + 1}\n`, '0000000000 65535 f \n', ...offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`)].join('');
  chunks.push(Buffer.from(`${xref}trailer\n<< /Size ${objects.length + 1} /Root 1 0 R /Info ${info} 0 R >>\nstartxref\n${offset}\n%%EOF\n`, 'latin1'));
  return Buffer.concat(chunks);
}

/** N pages of distinct, recognisable text ("page 7 of 120: word word ..."), for tests and benchmarks. */
export function numberedPdf(pages: number, wordsPerPage = 60): Buffer {
  const vocab = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima', 'mike', 'november', 'oscar', 'papa'];
  return writePdf({
    title: `numbered ${pages}`,
    pages: Array.from({ length: pages }, (_, p) => {
      const words = Array.from({ length: wordsPerPage }, (_, w) => vocab[(p * 7 + w * 3) % vocab.length]);
      const lines: string[] = [`Page ${p + 1} of ${pages}`];
      for (let i = 0; i < words.length; i += 10) lines.push(words.slice(i, i + 10).join(' '));
      lines.push(`end of page ${p + 1}`);
      return { lines };
    }),
  });
}
