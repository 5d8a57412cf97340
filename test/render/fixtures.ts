/**
 * Hand-built PDFs for the bad-input tests: each is a few lines of PDF syntax with a correct
 * xref, written to a temp folder. Nothing here comes from the shared corpus.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { expect } from 'vitest';
import { DocbatchError } from '../../src/errors.ts';

export const CORPUS = join(import.meta.dirname, '../../../shared/corpus/pdf');
export const corpusFile = (name: string): string => join(CORPUS, name);

/** A PDF from object bodies numbered 1..n; object 1 must be the catalog. `trailer`: more trailer entries. */
export function buildPdf(objects: Array<string | Buffer>, trailer = ''): Buffer {
  const parts: Buffer[] = [Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  let offset = parts[0]!.length;
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(offset);
    const chunk = Buffer.concat([
      Buffer.from(`${i + 1} 0 obj\n`, 'latin1'),
      typeof body === 'string' ? Buffer.from(body, 'latin1') : body,
      Buffer.from('\nendobj\n', 'latin1'),
    ]);
    parts.push(chunk);
    offset += chunk.length;
  });
  const xref = [`xref\n0 ${objects.length + 1}\n`, '0000000000 65535 f \n', ...offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`)].join('');
  parts.push(Buffer.from(`${xref}trailer\n<< /Size ${objects.length + 1} /Root 1 0 R${trailer ? ` ${trailer}` : ''} >>\nstartxref\n${offset}\n%%EOF\n`, 'latin1'));
  return Buffer.concat(parts);
}

/** A stream object body; `data` is compressed with Flate unless `raw`. */
export function stream(dict: string, data: Buffer | string, raw = false): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  const body = raw ? bytes : deflateSync(bytes);
  const filter = raw ? '' : ' /Filter /FlateDecode';
  return Buffer.concat([Buffer.from(`<< ${dict}${filter} /Length ${body.length} >>\nstream\n`, 'latin1'), body, Buffer.from('\nendstream', 'latin1')]);
}

export interface PageSpec {
  width: number;
  height: number;
  content: string;
  rotate?: number;
  /** The page's /Resources dictionary. Font /F1 (Helvetica) is always there. */
  resources?: string;
}

/**
 * Pages with a Helvetica font as /F1. Objects: 1 catalog, 2 pages, 3 font, then per page its
 * page object and its content, then `extra` (numbered from 4 + 2 × pages).
 */
export function pagesPdf(pages: PageSpec[], extra: Array<string | Buffer> = [], fontDict = '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>'): Buffer {
  const kids = pages.map((_, i) => `${4 + 2 * i} 0 R`).join(' ');
  const objects: Array<string | Buffer> = ['<< /Type /Catalog /Pages 2 0 R >>', `<< /Type /Pages /Kids [${kids}] /Count ${pages.length} >>`, fontDict];
  pages.forEach((p, i) => {
    const resources = p.resources ?? '<< /Font << /F1 3 0 R >> >>';
    objects.push(
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${p.width} ${p.height}]${p.rotate ? ` /Rotate ${p.rotate}` : ''} /Resources ${resources} /Contents ${5 + 2 * i} 0 R >>`,
      stream('', p.content),
    );
  });
  return buildPdf([...objects, ...extra]);
}

/** Index of the first `extra` object of a `pagesPdf` with `pageCount` pages. */
export const firstExtra = (pageCount: number): number => 4 + 2 * pageCount;

export function textPage(width: number, height: number, lines: string[], size = 24): PageSpec {
  const ops = lines.map((line, i) => `BT /F1 ${size} Tf 40 ${height - 60 - i * size * 1.5} Td (${line}) Tj ET`).join('\n');
  return { width, height, content: ops };
}

/**
 * A page whose rendering costs seconds of CPU while memory stays flat: one wide stroke with
 * round joins through many points; Skia outlines the whole stroke before it fills it.
 */
export function slowPage(segments: number): PageSpec {
  const points: string[] = [];
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 600;
  for (let i = 0; i < segments; i++) points.push(`${rnd().toFixed(1)} ${rnd().toFixed(1)} l`);
  return { width: 600, height: 600, content: `300 w 1 J 1 j 0 0 m\n${points.join('\n')}\nS` };
}

/**
 * A page that draws one gray image of `side` × `side` pixels, all zeros: a decompression bomb
 * (RunLength: 2 bytes of file per 128 pixels, so 20000² pixels cost 6 MB on disk, 400 MB decoded).
 */
export function hugeImagePdf(side: number): Buffer {
  const pixels = side * side;
  const runs = Math.ceil(pixels / 128);
  const data = Buffer.alloc(runs * 2 + 1);
  for (let i = 0; i < runs; i++) data[i * 2] = 129; // repeat the next byte 257 - 129 = 128 times
  const last = pixels - (runs - 1) * 128;
  data[(runs - 1) * 2] = 257 - last;
  data[runs * 2] = 128; // end of data
  const image = Buffer.concat([
    Buffer.from(
      `<< /Type /XObject /Subtype /Image /Width ${side} /Height ${side} /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /RunLengthDecode /Length ${data.length} >>\nstream\n`,
      'latin1',
    ),
    data,
    Buffer.from('\nendstream', 'latin1'),
  ]);
  return pagesPdf(
    [{ width: 612, height: 792, content: 'q 500 0 0 500 50 150 cm /Im1 Do Q', resources: `<< /XObject << /Im1 ${firstExtra(1)} 0 R >> >>` }],
    [image],
  );
}

/**
 * Form XObjects that each draw the previous one `fanout` times, `depth` deep: fanout^depth
 * drawing operations from a file of a few hundred bytes (a "billion laughs" for PDF). pdf.js
 * inlines forms into the operator list, so this one allocates until something stops it.
 */
export function formBombPdf(depth: number, fanout: number): Buffer {
  const base = firstExtra(1);
  const forms: Buffer[] = [];
  for (let level = 0; level < depth; level++) {
    const content = level === 0 ? '0 0 m 10 10 l S' : Array.from({ length: fanout }, () => '/X Do').join(' ');
    const resources = level === 0 ? '' : ` /Resources << /XObject << /X ${base + level - 1} 0 R >> >>`;
    forms.push(stream(`/Type /XObject /Subtype /Form /BBox [0 0 600 600]${resources}`, content));
  }
  return pagesPdf([{ width: 600, height: 600, content: '/X Do', resources: `<< /XObject << /X ${base + depth - 1} 0 R >> >>` }], forms);
}

/**
 * A page-tree bomb: one page dictionary, named `fanout` times by each of `levels` nested /Pages
 * nodes (fanout^levels pages in a few KB). The root says `count` pages (the product when absent);
 * the nodes below say their true counts.
 */
export function pageTreeBombPdf(levels: number, fanout: number, count = fanout ** levels): Buffer {
  const objects = ['<< /Type /Catalog /Pages 2 0 R >>', '', '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>'];
  let kid = 3;
  for (let level = 1; level < levels; level++) {
    objects.push(`<< /Type /Pages /Parent 2 0 R /Kids [${Array(fanout).fill(`${kid} 0 R`).join(' ')}] /Count ${fanout ** level} >>`);
    kid = objects.length;
  }
  objects[1] = `<< /Type /Pages /Kids [${Array(fanout).fill(`${kid} 0 R`).join(' ')}] /Count ${count} >>`;
  return buildPdf(objects);
}

/**
 * A one-page PDF whose Info dictionary (`/Title` of `titleLength` A's) sits in a Flate-compressed
 * object stream, with a cross-reference stream: a title far larger than the file.
 */
export function compressedTitlePdf(titleLength: number): Buffer {
  const parts: Buffer[] = [Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  let offset = parts[0]!.length;
  const offsets: number[] = [];
  const add = (body: Buffer | string): void => {
    offsets.push(offset);
    const chunk = Buffer.concat([Buffer.from(`${offsets.length} 0 obj\n`), typeof body === 'string' ? Buffer.from(body, 'latin1') : body, Buffer.from('\nendobj\n')]);
    parts.push(chunk);
    offset += chunk.length;
  };
  add('<< /Type /Catalog /Pages 2 0 R >>');
  add('<< /Type /Pages /Kids [3 0 R] /Count 1 >>');
  add('<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>');
  offsets.push(-1); // 4 0 obj, the Info dictionary: in the object stream
  const header = '4 0 ';
  const objects = deflateSync(Buffer.from(`${header}<< /Title (${'A'.repeat(titleLength)}) >>`, 'latin1'));
  add(Buffer.concat([Buffer.from(`<< /Type /ObjStm /N 1 /First ${header.length} /Filter /FlateDecode /Length ${objects.length} >>\nstream\n`), objects, Buffer.from('\nendstream')]));
  const xrefAt = offset;
  const row = (type: number, field2: number, field3: number): Buffer => {
    const r = Buffer.alloc(7);
    r[0] = type;
    r.writeUInt32BE(field2, 1);
    r.writeUInt16BE(field3, 5);
    return r;
  };
  const rows = deflateSync(Buffer.concat([row(0, 0, 65535), row(1, offsets[0]!, 0), row(1, offsets[1]!, 0), row(1, offsets[2]!, 0), row(2, 5, 0), row(1, offsets[4]!, 0), row(1, xrefAt, 0)]));
  parts.push(Buffer.concat([
    Buffer.from(`6 0 obj\n<< /Type /XRef /Size 7 /W [1 4 2] /Root 1 0 R /Info 4 0 R /Filter /FlateDecode /Length ${rows.length} >>\nstream\n`),
    rows,
    Buffer.from(`\nendstream\nendobj\nstartxref\n${xrefAt}\n%%EOF\n`),
  ]));
  return Buffer.concat(parts);
}

/** A temp folder for files a test writes; `cleanup()` in afterAll. */
export function tempDir(prefix: string): { dir: string; write: (name: string, data: Buffer | string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `docbatch-${prefix}-`));
  return {
    dir,
    write: (name, data) => {
      const path = join(dir, name);
      writeFileSync(path, data);
      return path;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Pids of this process's children running src/render/child.ts in `mode` (from /proc; Linux). */
export function childPids(mode: 'render' | 'inspect'): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'latin1').includes(`render/child.ts\0${mode}`)) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids.sort((a, b) => a - b);
}

/** The DocbatchError a render rejects with (the test fails if it resolves). */
export async function failure(promise: Promise<unknown>): Promise<DocbatchError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(DocbatchError);
    return err as DocbatchError;
  }
  throw new Error('expected the render to fail');
}
