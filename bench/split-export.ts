/**
 * Splitting a ~200 MB ChatGPT export: MB/s, chunks, seconds and peak RSS of the split alone.
 *
 *   node_modules/.bin/node bench/split-export.ts [--mb 200] [--seed 1] [--budget 3500] [--zip] [--keep]
 *
 * The export is generated (deterministically) into a temp dir by this process; the split then
 * runs in a fresh child process, so its peak RSS is the split's own (as `/usr/bin/time -v`
 * would report it for `node bench/split-export.ts --split FILE`). --zip also times the same
 * export zipped (needs the `zip` CLI).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { detectFile } from '../src/ingest/detect.ts';
import { splitExport } from '../src/ingest/chat/split.ts';
import { generateChatgptExport } from './lib/chatgpt-gen.ts';

const { values } = parseArgs({
  options: {
    mb: { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
    budget: { type: 'string', default: '3500' },
    split: { type: 'string' },
    zip: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});

if (values.split) {
  // Child: split one file and print the figures as JSON.
  const path = values.split;
  const t0 = performance.now();
  const kind = await detectFile(path);
  if (kind.kind !== 'chat') throw new Error(`not a chat export: ${JSON.stringify(kind)}`);
  const r = await splitExport(path, kind, `${path}.sidecar.jsonl`, { file: path, budgetTokens: Number(values.budget) });
  const seconds = (performance.now() - t0) / 1000;
  rmSync(`${path}.sidecar.jsonl`, { force: true });
  console.log(JSON.stringify({
    seconds,
    inputMB: statSync(path).size / 1e6,
    conversations: r.conversations,
    messages: r.messages,
    chunks: r.chunks,
    sidecarMB: r.sidecarBytes / 1e6,
    skipped: r.skipped,
    peakRssMB: process.resourceUsage().maxRSS / 1024,
  }));
} else {
  const dir = mkdtempSync(join(tmpdir(), 'docbatch-bench-'));
  try {
    const path = join(dir, 'conversations.json');
    const g0 = performance.now();
    const gen = await generateChatgptExport({ path, targetBytes: Number(values.mb) * 1e6, seed: Number(values.seed) });
    console.log(`generated ${(gen.bytes / 1e6).toFixed(1)} MB: ${gen.conversations} conversations, ${gen.nodes} nodes in ${((performance.now() - g0) / 1000).toFixed(1)} s`);
    const inputs = [path];
    if (values.zip) {
      const zipped = spawnSync('zip', ['-q', '-j', join(dir, 'export.zip'), path], { stdio: 'inherit' });
      if (zipped.status === 0) inputs.push(join(dir, 'export.zip'));
      else console.log('zip CLI not available: skipping the .zip run');
    }
    for (const input of inputs) {
      const child = spawnSync(process.execPath, [import.meta.filename, '--split', input, '--budget', String(values.budget)], {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      });
      if (child.status !== 0) throw new Error(`split failed: ${child.stderr}`);
      const r = JSON.parse(child.stdout) as { seconds: number; inputMB: number; chunks: number; conversations: number; messages: number; sidecarMB: number; peakRssMB: number; skipped: Record<string, number> };
      const mb = input.endsWith('.zip') ? gen.bytes / 1e6 : r.inputMB;
      console.log(
        `${input.endsWith('.zip') ? 'zip ' : 'json'}: ${mb.toFixed(1)} MB in ${r.seconds.toFixed(2)} s = ${(mb / r.seconds).toFixed(1)} MB/s; ` +
          `${r.conversations} conversations, ${r.messages} messages, ${r.chunks} chunks, sidecar ${r.sidecarMB.toFixed(1)} MB; ` +
          `peak RSS ${r.peakRssMB.toFixed(0)} MB`,
      );
      console.log(`  skipped: ${JSON.stringify(r.skipped)}`);
    }
    if (values.keep) console.log(`kept ${dir}`);
  } finally {
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
  }
}
