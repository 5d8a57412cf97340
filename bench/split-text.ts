/**
 * Splitting one huge chat message of pathological text into token-bounded chunks: seconds, µs a
 * character and MB/s, first of the chunker alone (chunkMessages, src/ingest/chunk.ts) on each shape
 * of text at each size, then of a whole ChatGPT export holding one such message (detect +
 * splitExport, the producer's path), in a fresh child process.
 *
 *   node_modules/.bin/node bench/split-text.ts [--chars 1000000,4000000,16000000] [--shape all] [--export-mb 64] [--budget 3500]
 *
 * Shapes: runs of blank lines, lines of one space, one-letter lines, one-character CJK sentences,
 * words between runs of blank lines, a sentence per line of prose. `--export-mb 0` skips the export.
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { chunkMessages } from '../src/ingest/chunk.ts';
import { splitExport } from '../src/ingest/chat/split.ts';
import { detectFile } from '../src/ingest/detect.ts';
import { estimateTokens } from '../src/ingest/tokens.ts';

const { values } = parseArgs({
  options: {
    chars: { type: 'string', default: '1000000,4000000,16000000' },
    shape: { type: 'string', default: 'all' },
    'export-mb': { type: 'string', default: '64' },
    budget: { type: 'string', default: '3500' },
    split: { type: 'string' },
  },
});
const budget = Number(values.budget);

const SHAPES: Record<string, string> = {
  'blank lines': '\n',
  'lines of one space': ' \n',
  'one-letter lines': 'a\n',
  'CJK sentences': '。',
  'words between blank lines': 'word\n\n\n\n\n\n\n\n\n\n',
  prose: 'The quick brown fox jumps over the lazy dog.\n',
};

function text(shape: string, chars: number): string {
  const unit = SHAPES[shape] as string;
  return `x${unit.repeat(Math.ceil(chars / unit.length)).slice(0, chars)}y`;
}

if (values.split) {
  // Child: split one export file, print the figures as JSON.
  const path = values.split;
  const t0 = performance.now();
  const kind = await detectFile(path);
  if (kind.kind !== 'chat') throw new Error(`not a chat export: ${JSON.stringify(kind)}`);
  const r = await splitExport(path, kind, `${path}.sidecar.jsonl`, { file: path, budgetTokens: budget, maxConversationBytes: 2 * statSync(path).size });
  const seconds = (performance.now() - t0) / 1000;
  rmSync(`${path}.sidecar.jsonl`, { force: true });
  console.log(JSON.stringify({ seconds, chunks: r.chunks, peakRssMB: process.resourceUsage().maxRSS / 1024 }));
} else {
  const shapes = values.shape === 'all' ? Object.keys(SHAPES) : values.shape.split(',');
  console.log(`chunkMessages, one message, budget ${budget} tokens (estimateTokens)`);
  for (const shape of shapes) {
    for (const chars of values.chars.split(',').map(Number)) {
      const message = { id: 'm', role: 'user', text: text(shape, chars) };
      const t0 = performance.now();
      const chunks = chunkMessages([message], { budgetTokens: budget, overlapTokens: 0, countTokens: estimateTokens });
      const ms = performance.now() - t0;
      console.log(`  ${shape.padEnd(26)} ${String(chars).padStart(9)} chars  ${(ms / 1000).toFixed(2).padStart(6)} s  ${((ms * 1000) / chars).toFixed(3)} µs/char  ${chunks.length} chunks`);
    }
  }
  const mb = Number(values['export-mb']);
  if (mb > 0) {
    const dir = mkdtempSync(join(tmpdir(), 'docbatch-bench-split-text-'));
    try {
      console.log(`splitExport, a ChatGPT export of one conversation of one message of ~${mb} MB (JSON), in a child process`);
      for (const shape of shapes) {
        const path = join(dir, 'conversations.json');
        // The message's JSON string, written in slices: a "\n" is 2 bytes of JSON.
        const unitJson = JSON.stringify(SHAPES[shape]).slice(1, -1);
        const repeats = Math.floor((mb * 1e6) / unitJson.length);
        const out = createWriteStream(path);
        const message = (id: string, role: string, parent: string | null, children: string[], body: string | null) =>
          `"${id}":{"id":"${id}","parent":${JSON.stringify(parent)},"children":${JSON.stringify(children)},"message":${body === null ? 'null' : `{"id":"${id}","author":{"role":"${role}","name":null,"metadata":{}},"create_time":1700000000,"update_time":null,"content":{"content_type":"text","parts":["x`}`;
        out.write(`[{"title":"bench","create_time":1700000000,"update_time":1700000000,"current_node":"m1","conversation_id":"c1","id":"c1","mapping":{` + message('root', 'system', null, ['m1'], null) + '},');
        out.write(message('m1', 'user', 'root', [], ''));
        const slice = unitJson.repeat(Math.max(1, Math.floor(1e6 / unitJson.length)));
        for (let written = 0; written < repeats; written += slice.length / unitJson.length) {
          if (!out.write(slice)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
        }
        out.end(`y"]},"status":"finished_successfully","end_turn":null,"weight":1,"metadata":{},"recipient":"all"}}}}]`);
        await finished(out);
        const bytes = statSync(path).size;
        const child = spawnSync(process.execPath, [import.meta.filename, '--split', path, '--budget', String(budget)], { encoding: 'utf8', maxBuffer: 1 << 20 });
        if (child.status !== 0) throw new Error(`split failed: ${child.stderr}`);
        const r = JSON.parse(child.stdout) as { seconds: number; chunks: number; peakRssMB: number };
        console.log(`  ${shape.padEnd(26)} ${(bytes / 1e6).toFixed(1)} MB  ${r.seconds.toFixed(2)} s  ${(bytes / 1e6 / r.seconds).toFixed(1)} MB/s  ${r.chunks} chunks  peak RSS ${r.peakRssMB.toFixed(0)} MB`);
        rmSync(path, { force: true });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
