/**
 * What a page image costs the engine emulator when a request arrives: its CPU per request for
 * the body's JSON and the image (size, sha256), the two ways it can read a body, on the same
 * requests in the same run. In bench/pipeline-pages.ts the emulator shares the cores with the
 * worker it stands in for, so whatever it spends is taken from the pipeline being measured.
 *
 *   node_modules/.bin/node bench/emulator-images.ts [--requests 400] [--corpus ../shared/corpus]
 *
 * Pages of the shared corpus are drawn once at 1288 px as PNG by docbatch's own RenderPool (real
 * page images: text pages of 0.2–0.4 MB, a JPEG 2000 photo page of 2.7 MB) and sent as the worker
 * sends them. "plain" is JSON.parse of the whole body, then the image decoded whole and read by
 * sharp; "from the bytes" is src/emulator/body-json.ts (what the emulator does).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseJsonBody } from '../src/emulator/body-json.ts';
import { prepareChat } from '../src/emulator/prompt.ts';
import { RenderPool } from '../src/render/pool.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '400' },
    corpus: { type: 'string', default: resolve(import.meta.dirname, '../../shared/corpus') },
  },
});
const N = Number(values.requests);
const PAGES: Array<[string, number]> = [
  ['tracemonkey.pdf', 1],
  ['tracemonkey.pdf', 6],
  ['TAMReview.pdf', 3],
  ['TAMReview.pdf', 17],
  ['cmykjpeg.pdf', 1],
  ['issue5481.pdf', 1],
];

const pool = new RenderPool({ size: 1, renderer: 'pdfium', fallback: false });
const images: Buffer[] = [];
try {
  for (const [file, page] of PAGES) {
    const r = await pool.render({ path: resolve(values.corpus!, 'pdf', file), blobId: file, page, longestSide: 1288, format: 'png', text: false });
    images.push(r.image);
  }
} finally {
  await pool.close();
}
const bodies = images.map((png) =>
  Buffer.from(
    JSON.stringify({
      model: 'docbatch/emulated-vl',
      max_tokens: 100,
      messages: [
        { role: 'system', content: 'You transcribe document pages into Markdown, faithfully, without commentary.' },
        { role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } }, { type: 'text', text: 'Transcribe this page.' }] },
      ],
    }),
  ),
);
const policy = { model: 'docbatch/emulated-vl', maxImagesPerPrompt: 8, acceptsImages: true };
const ways: Record<string, (body: Buffer) => unknown> = {
  plain: (body) => JSON.parse(body.toString('utf8')),
  'from the bytes': parseJsonBody,
};

console.log(`${N} requests over ${images.length} page images (${images.map((i) => `${Math.round(i.length / 1024)} KiB`).join(', ')})`);
const best = new Map<string, number>();
for (let round = 1; round <= 3; round++) {
  for (const [name, parse] of Object.entries(ways)) {
    const started = process.cpuUsage();
    for (let i = 0; i < N; i++) {
      const body = parse(bodies[i % bodies.length]!) as { messages: unknown };
      await prepareChat(body.messages, policy);
    }
    const used = process.cpuUsage(started);
    const ms = (used.user + used.system) / 1000 / N;
    best.set(name, Math.min(best.get(name) ?? Infinity, ms));
    console.log(`round ${round}: ${name}: ${ms.toFixed(2)} CPU ms a request`);
  }
}
for (const [name, ms] of best) console.log(`${name}: best ${ms.toFixed(2)} CPU ms a request`);
