/**
 * How long `docbatch eval` takes to score a whole book: the text layer of freeculture.pdf (352
 * pages, from ../shared/corpus; a generated text of the same size when the corpus is absent) as
 * the truth, against outputs with seeded OCR-like noise (substituted, dropped and inserted
 * characters) at two rates. Each is scored per page (both sides have page markers) and as one
 * text (the truth without markers: patience anchoring, align.ts), and compared page by page.
 * docs/evaluation.md quotes its output.
 *
 *   node_modules/.bin/node bench/eval-book.ts [--pdf PATH] [--pages N] [--exact]
 *
 * --exact also measures the whole text of the noisier output with the exact sweep alone (minutes),
 * to show how far anchoring is from it.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { compareRun } from '../src/eval/compare-run.ts';
import { DEFAULT_COMPARE } from '../src/eval/compare.ts';
import { discoverOutputs } from '../src/eval/discover.ts';
import { evaluate } from '../src/eval/score.ts';
import { textCounts } from '../src/eval/text.ts';
import { readTruth } from '../src/eval/truth.ts';
import { openDocument } from '../src/render/pdfjs.ts';
import { joinTextRuns } from '../src/render/text.ts';
import { rng, sampleText } from './lib/text-corpus.ts';

const { values } = parseArgs({
  options: {
    pdf: { type: 'string', default: join(import.meta.dirname, '..', '..', 'shared', 'corpus', 'pdf', 'freeculture.pdf') },
    pages: { type: 'string', default: '352' },
    exact: { type: 'boolean', default: false },
  },
});
const wanted = Number(values.pages);

async function bookPages(): Promise<{ pages: string[]; from: string }> {
  if (existsSync(values.pdf)) {
    const { task, doc } = await openDocument(new Uint8Array(readFileSync(values.pdf)));
    try {
      const pages: string[] = [];
      for (let n = 1; n <= Math.min(doc.numPages, wanted); n++) {
        const page = await doc.getPage(n);
        pages.push(joinTextRuns((await page.getTextContent()).items));
      }
      return { pages, from: values.pdf };
    } finally {
      await task.destroy();
    }
  }
  return { pages: Array.from({ length: wanted }, (_, i) => sampleText('english', i + 1, 2600)), from: 'generated English (corpus absent)' };
}

/** OCR-like noise: each character substituted with probability p, dropped with p/3, followed by an inserted one with p/3. */
function noisy(text: string, p: number, rand: () => number): string {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  let out = '';
  for (const ch of text) {
    const r = rand();
    if (r < p) out += letters[Math.floor(rand() * letters.length)];
    else if (r < p + p / 3) continue;
    else out += ch;
    if (rand() < p / 3) out += letters[Math.floor(rand() * letters.length)];
  }
  return out;
}

const marked = (pages: string[]) => pages.map((t, i) => `<!-- page ${i + 1} -->\n${t}\n`).join('');

const { pages, from } = await bookPages();
const chars = pages.reduce((n, p) => n + p.length, 0);
console.log(`book: ${pages.length} pages, ${chars.toLocaleString('en-US')} characters (${from})`);
console.log(`load average before: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

const root = mkdtempSync(join(tmpdir(), 'docbatch-eval-bench-'));
try {
  const truthPaged = join(root, 'truth-paged');
  const truthWhole = join(root, 'truth-whole');
  mkdirSync(truthPaged);
  mkdirSync(truthWhole);
  writeFileSync(join(truthPaged, 'book.md'), marked(pages));
  writeFileSync(join(truthWhole, 'book.md'), pages.join('\n'));
  const out = join(root, 'out');
  const rates: Array<[string, number]> = [
    ['good-model', 0.02],
    ['poor-model', 0.15],
  ];
  for (const [model, p] of rates) {
    const rand = rng(p * 1000);
    const dir = join(out, model);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'book.md'), marked(pages.map((t) => noisy(t, p, rand))));
    writeFileSync(join(dir, 'book.report.json'), JSON.stringify({ document: 'dbook', source: '/in/book.pdf', kind: 'pdf', models: [model], failed: [], outputs: [join(dir, 'book.md')] }));
  }
  const found = discoverOutputs(out);
  const options = { tolerance: 0, caseSensitive: false };

  console.log('\nscoring                          model        CER       WER    char edits  exact  seconds');
  for (const [label, dir] of [
    ['per page (markers on both sides)', truthPaged],
    ['whole text (truth has no marker)', truthWhole],
  ] as const) {
    const started = performance.now();
    const report = evaluate(readTruth(dir), found, options);
    const seconds = (performance.now() - started) / 1000;
    for (const [model, m] of Object.entries(report.models)) {
      console.log(`${label.padEnd(33)}${model.padEnd(11)}${pct(m.cer)}${pct(m.wer)}${String(m.char_edits).padStart(12)}${String(m.exact).padStart(7)}${seconds.toFixed(2).padStart(9)}`);
    }
  }

  if (values.exact) {
    const truthText = pages.join('\n');
    const outputText = readFileSync(join(out, rates[1]![0], 'book.md'), 'utf8').replace(/^<!-- page \d+ -->$/gm, '');
    const started = performance.now();
    const exact = textCounts(truthText, outputText, false, Number.POSITIVE_INFINITY);
    console.log(`whole text, exact sweep only      ${rates[1]![0].padEnd(11)}${pct(exact.char_edits / exact.chars)}${pct(exact.word_edits / exact.words)}${String(exact.char_edits).padStart(12)}${String(exact.exact).padStart(7)}${((performance.now() - started) / 1000).toFixed(2).padStart(9)}`);
  }

  const t = performance.now();
  const run = compareRun(found, DEFAULT_COMPARE);
  console.log(`compare, page by page: ${run.pages} pages, mean similarity ${run.mean_page_similarity}, in ${((performance.now() - t) / 1000).toFixed(2)} s`);
  console.log(`load average after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
} finally {
  rmSync(root, { recursive: true, force: true });
}

function pct(x: number | null): string {
  return (x === null ? '-' : `${(x * 100).toFixed(2)}%`).padStart(8) + '  ';
}
