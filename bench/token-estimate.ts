/**
 * How estimateTokens compares with real BPE tokenizers (o200k_base, cl100k_base), per kind of
 * text, and how fast it runs. docs/chat-exports.md quotes its output.
 *
 *   node_modules/.bin/node bench/token-estimate.ts [--seeds 8] [--chars 4000]
 */
import { countTokens as o200k } from 'gpt-tokenizer/encoding/o200k_base';
import { countTokens as cl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { parseArgs } from 'node:util';
import { estimateTokens } from '../src/ingest/tokens.ts';
import { SAMPLE_KINDS, sampleText } from './lib/text-corpus.ts';

const { values } = parseArgs({ options: { seeds: { type: 'string', default: '8' }, chars: { type: 'string', default: '4000' } } });
const seeds = Number(values.seeds);
const chars = Number(values.chars);

console.log('kind          o200k/unit cl100k/unit  est/max(min)  est/max(mean)  est/o200k(mean)  est/cl100k(mean)');
let worst = Infinity;
for (const kind of SAMPLE_KINDS) {
  let minRatio = Infinity;
  let sumRatio = 0;
  let sumO = 0;
  let sumC = 0;
  let units = 0;
  let rO = 0;
  let rC = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    for (const size of [chars, 200]) {
      const text = sampleText(kind, seed * 7919 + size, size);
      const o = o200k(text);
      const c = cl100k(text);
      const e = estimateTokens(text);
      const r = e / Math.max(o, c);
      minRatio = Math.min(minRatio, r);
      if (size !== chars) continue;
      sumRatio += r;
      rO += e / o;
      rC += e / c;
      sumO += o;
      sumC += c;
      units += text.length;
    }
  }
  worst = Math.min(worst, minRatio);
  console.log(
    `${kind.padEnd(14)}${(sumO / units).toFixed(3).padStart(10)}${(sumC / units).toFixed(3).padStart(12)}` +
      `${minRatio.toFixed(3).padStart(14)}${(sumRatio / seeds).toFixed(3).padStart(15)}` +
      `${(rO / seeds).toFixed(3).padStart(17)}${(rC / seeds).toFixed(3).padStart(18)}`,
  );
}
console.log(`lowest est/max(real) over all samples: ${worst.toFixed(3)} (must be >= 1)`);

// Speed: 32 MB of mixed text as 8 000 flat strings (the chunker counts messages and chunks).
const texts: string[] = [];
let bytes = 0;
for (let i = 0; bytes < 32e6; i++) {
  const t = Buffer.from(sampleText('chat-mix', i, 4000)).toString(); // flat, as JSON.parse makes them
  texts.push(t);
  bytes += Buffer.byteLength(t);
}
for (const t of texts.slice(0, 200)) estimateTokens(t); // warm up
const t0 = performance.now();
let est = 0;
for (const t of texts) est += estimateTokens(t);
const ms = performance.now() - t0;
console.log(`speed: ${(bytes / 1e6).toFixed(1)} MB (UTF-8) in ${ms.toFixed(0)} ms = ${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s (${est} tokens)`);
