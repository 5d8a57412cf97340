/**
 * Makes the demo's sample inputs (committed under samples/): a three-page PDF with text, an
 * embedded image and a rotated page, and a small ChatGPT-style export with an edited branch and
 * a hidden system message. Written from scratch here so the repo carries no third-party files.
 *
 *   node_modules/.bin/node scripts/make-samples.ts
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

const OUT = join(import.meta.dirname, '..', 'samples');

// ---- a tiny PDF writer: uncompressed content streams, Helvetica, one JPEG image ----

function pdfString(s: string): string {
  return `(${s.replace(/[\\()]/g, (c) => `\\${c}`)})`;
}

function textBlock(lines: string[], x: number, y: number, size: number, leading: number): string {
  const body = lines.map((l, i) => `${i === 0 ? '' : 'T* '}${pdfString(l)} Tj`).join('\n');
  return `BT /F1 ${size} Tf ${leading} TL ${x} ${y} Td\n${body}\nET\n`;
}

async function makeImage(): Promise<{ jpeg: Buffer; width: number; height: number }> {
  const width = 480;
  const height = 300;
  // A bar chart drawn as SVG and rasterised: a real image that a vision model could describe.
  const bars = [120, 200, 160, 250, 90, 220];
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <rect width="100%" height="100%" fill="#f4f6fb"/>
    <text x="20" y="30" font-family="sans-serif" font-size="20" fill="#1b2a4a">Pages per second by week</text>
    ${bars.map((h, i) => `<rect x="${40 + i * 70}" y="${280 - h}" width="48" height="${h}" fill="hsl(${210 + i * 12},60%,50%)"/>`).join('')}
    <line x1="30" y1="280" x2="460" y2="280" stroke="#1b2a4a" stroke-width="2"/>
  </svg>`;
  const jpeg = await sharp(Buffer.from(svg)).jpeg({ quality: 85 }).toBuffer();
  return { jpeg, width, height };
}

async function makePdf(): Promise<Buffer> {
  const image = await makeImage();
  const page1 = textBlock(
    [
      'docbatch sample document',
      '',
      'This file ships with docbatch for its demo. Each page becomes one job on the',
      'inference queue; a GPU worker renders it to an image and asks a vision model',
      'to transcribe it to Markdown, with this text layer as a hint.',
      '',
      'Section 1. Why batch documents on GPUs',
      'Throughput rises with the number of requests in flight, so the worker keeps',
      'many pages at the engine at once and shrinks the window when memory runs out.',
    ],
    72,
    720,
    12,
    16,
  );
  const page2 =
    textBlock(['Figure 1. Throughput of the pipeline over six weeks.'], 72, 740, 12, 16) +
    `q 432 0 0 270 90 430 cm /Im1 Do Q\n` +
    textBlock(['The chart above is an embedded JPEG image, not text: only the image', 'shows the bars.'], 72, 400, 11, 15);
  const page3 = textBlock(
    ['Table 1. Sample costs', '', 'item          pages   seconds', 'contracts        120       41', 'manuals          800      260', '', 'This page is rotated by 90 degrees (/Rotate 90).'],
    72,
    520,
    12,
    16,
  );

  const objects: string[] = [];
  const add = (body: string) => {
    objects.push(body);
    return objects.length;
  };
  const catalog = add('');
  const pages = add('');
  const font = add('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>');
  const img = add(`__IMAGE__`);
  const contents = [page1, page2, page3].map((c) => add(`<< /Length ${Buffer.byteLength(c, 'latin1')} >>\nstream\n${c}endstream`));
  const pageIds = contents.map((c, i) =>
    add(
      `<< /Type /Page /Parent ${pages} 0 R /MediaBox [0 0 ${i === 2 ? '792 612' : '612 792'}]${i === 2 ? ' /Rotate 90' : ''} /Resources << /Font << /F1 ${font} 0 R >> /XObject << /Im1 ${img} 0 R >> >> /Contents ${c} 0 R >>`,
    ),
  );
  objects[catalog - 1] = `<< /Type /Catalog /Pages ${pages} 0 R >>`;
  objects[pages - 1] = `<< /Type /Pages /Kids [${pageIds.map((p) => `${p} 0 R`).join(' ')}] /Count ${pageIds.length} >>`;
  objects.push(`<< /Title ${pdfString('docbatch sample')} /Producer ${pdfString('docbatch scripts/make-samples.ts')} >>`);
  const info = objects.length;

  const chunks: Buffer[] = [Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  let offset = chunks[0]!.length;
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(offset);
    let buf: Buffer;
    if (body === '__IMAGE__') {
      const head = `${i + 1} 0 obj\n<< /Type /XObject /Subtype /Image /Width ${image.width} /Height ${image.height} /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode /Length ${image.jpeg.length} >>\nstream\n`;
      buf = Buffer.concat([Buffer.from(head, 'latin1'), image.jpeg, Buffer.from('\nendstream\nendobj\n', 'latin1')]);
    } else {
      buf = Buffer.from(`${i + 1} 0 obj\n${body}\nendobj\n`, 'latin1');
    }
    chunks.push(buf);
    offset += buf.length;
  });
  const xref = [`xref\n0 ${objects.length + 1}\n`, '0000000000 65535 f \n', ...offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`)].join('');
  chunks.push(Buffer.from(`${xref}trailer\n<< /Size ${objects.length + 1} /Root ${catalog} 0 R /Info ${info} 0 R >>\nstartxref\n${offset}\n%%EOF\n`, 'latin1'));
  return Buffer.concat(chunks);
}

// ---- a ChatGPT-style export ----

interface Node {
  id: string;
  message: unknown;
  parent: string | null;
  children: string[];
}

function makeExport(): unknown[] {
  let t = 1_714_000_000;
  const conversation = (id: string, title: string, turns: Array<[string, string, string, boolean?]>, branches: Array<{ after: string; id: string; role: string; text: string }>, current: string) => {
    const mapping: Record<string, Node> = { 'client-created-root': { id: 'client-created-root', message: null, parent: null, children: [] } };
    let parent = 'client-created-root';
    for (const [mid, role, text, hidden] of turns) {
      mapping[mid] = {
        id: mid,
        parent,
        children: [],
        message: {
          id: mid,
          author: { role, name: null, metadata: {} },
          create_time: (t += 17),
          content: { content_type: 'text', parts: [text] },
          status: 'finished_successfully',
          metadata: hidden ? { is_visually_hidden_from_conversation: true } : {},
          recipient: 'all',
        },
      };
      mapping[parent]!.children.push(mid);
      parent = mid;
    }
    for (const b of branches) {
      mapping[b.id] = {
        id: b.id,
        parent: b.after,
        children: [],
        message: { id: b.id, author: { role: b.role, name: null, metadata: {} }, create_time: (t += 5), content: { content_type: 'text', parts: [b.text] }, status: 'finished_successfully', metadata: {}, recipient: 'all' },
      };
      mapping[b.after]!.children.unshift(b.id);
    }
    return { id, conversation_id: id, title, create_time: t, update_time: t + 100, mapping, current_node: current, default_model_slug: 'gpt-4o' };
  };
  return [
    conversation(
      'c0a1-plan-trip',
      'Planning a rail trip',
      [
        ['m1', 'system', 'You are a helpful travel assistant. (hidden custom instructions)', true],
        ['m2', 'user', 'I want to go from Vienna to Kraków by train in May. What are my options?'],
        ['m3', 'assistant', 'There is a direct night train (about 7 hours) and several day connections via Ostrava or Katowice. The night train saves a hotel night.'],
        ['m4', 'user', 'Book-ahead prices for the night train, roughly?'],
        ['m5', 'assistant', 'A couchette is usually 40 to 70 euros when booked a few weeks ahead; a private sleeper costs more.'],
      ],
      // An abandoned first answer that the user regenerated: it must not appear in any output.
      [{ after: 'm2', id: 'm3-old', role: 'assistant', text: 'ABANDONED-DRAFT: Flying is your only option.' }],
      'm5',
    ),
    conversation(
      'c0b2-sql-index',
      'Why is my query slow?',
      [
        ['n1', 'user', 'My Postgres query filters on created_at and user_id and takes 4 seconds on 20M rows.'],
        ['n2', 'assistant', 'Add a composite index on (user_id, created_at). Filter on the equality column first, then the range. Run EXPLAIN ANALYZE to confirm an index scan.'],
        ['n3', 'user', 'That brought it to 12 ms, thanks!'],
      ],
      [],
      'n3',
    ),
  ];
}

const pdf = await makePdf();
writeFileSync(join(OUT, 'sample-report.pdf'), pdf);
writeFileSync(join(OUT, 'conversations.json'), `${JSON.stringify(makeExport(), null, 1)}\n`);
process.stdout.write(`wrote samples/sample-report.pdf (${pdf.length} bytes) and samples/conversations.json\n`);
