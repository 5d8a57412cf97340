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
import { writePdf } from './lib/pdf-writer.ts';

const OUT = join(import.meta.dirname, '..', 'samples');

async function makeImage(): Promise<{ data: Buffer; width: number; height: number }> {
  const width = 480;
  const height = 300;
  // A bar chart drawn as SVG and rasterised: a real image that a vision model could describe.
  const bars = [120, 200, 160, 250, 90, 220];
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <rect width="100%" height="100%" fill="#f4f6fb"/>
    <text x="20" y="30" font-family="sans-serif" font-size="20" fill="#1b2a4a">Pages per second by week</text>
    ${bars.map((h, i) => `<rect x="${40 + i * 70}" y="${290 - h}" width="48" height="${h - 10}" fill="hsl(${210 + i * 12},60%,50%)"/>`).join('')}
    <line x1="30" y1="280" x2="460" y2="280" stroke="#1b2a4a" stroke-width="2"/>
  </svg>`;
  return { data: await sharp(Buffer.from(svg)).jpeg({ quality: 85 }).toBuffer(), width, height };
}

async function makePdf(): Promise<Buffer> {
  return writePdf({
    title: 'docbatch sample',
    jpeg: await makeImage(),
    pages: [
      {
        lines: [
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
      },
      {
        lines: ['Figure 1. Throughput of the pipeline over six weeks.'],
        image: [90, 430, 432, 270],
      },
      {
        lines: ['Table 1. Sample costs', '', 'item          pages   seconds', 'contracts        120       41', 'manuals          800      260', '', 'This page is rotated by 90 degrees (/Rotate 90).'],
        size: [792, 612],
        rotate: 90,
      },
    ],
  });
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
