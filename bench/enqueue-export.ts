/**
 * The producer at scale: a ~200 MB ChatGPT export split and enqueued by `docbatch enqueue`, as a
 * user runs it, timed with `/usr/bin/time -v`. Prints wall time, peak RSS, chunks, and the Redis
 * memory the queued units take (used_memory before and after, per chunk).
 *
 *   node_modules/.bin/node bench/enqueue-export.ts [--mb 200] [--seed 1] [--zip]
 *
 * Targets (issue: inputs at real-world scale): under 15 s and 512 MB peak on this 2-core
 * machine, under 2 KB of Redis per chunk. Uses the Redis at REDIS_URL (default 127.0.0.1:6379)
 * under a throwaway key prefix, deleted afterwards; no worker runs, so every unit stays queued.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { purgePrefix } from '../src/store/admin.ts';
import { generateChatgptExport } from './lib/chatgpt-gen.ts';

const { values } = parseArgs({
  options: { mb: { type: 'string', default: '200' }, seed: { type: 'string', default: '1' }, zip: { type: 'boolean', default: false } },
});
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const dir = mkdtempSync(join(tmpdir(), 'docbatch-bench-enqueue-'));
const prefix = `bench-enqueue-${process.pid}`;
const redis = new Redis(redisUrl);
try {
  const exportPath = join(dir, 'conversations.json');
  const generated = await generateChatgptExport({ path: exportPath, targetBytes: Number(values.mb) * 1024 * 1024, seed: Number(values.seed) });
  let input = exportPath;
  if (values.zip) {
    const zip = spawnSync('zip', ['-j', '-q', join(dir, 'export.zip'), exportPath]);
    if (zip.status !== 0) throw new Error('zip failed (is the zip CLI installed?)');
    input = join(dir, 'export.zip');
  }
  const bytes = statSync(input).size;
  const memBefore = await usedMemory(redis);
  const bin = join(import.meta.dirname, '..', 'bin', 'docbatch');
  const run = spawnSync('/usr/bin/time', ['-v', bin, 'enqueue', '--json', input], {
    env: { ...process.env, REDIS_URL: redisUrl, DOCBATCH_PREFIX: prefix, BLOB_DIR: join(dir, 'blobs'), LOG_FORMAT: 'json' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.status !== 0) throw new Error(`enqueue failed (${run.status}): ${run.stderr.slice(-2000)}`);
  const line = JSON.parse(run.stdout.trim().split('\n').pop()!) as { units: number; outcome: string };
  const wall = parseTime(/Elapsed \(wall clock\) time.*: (.+)/.exec(run.stderr)?.[1] ?? '0');
  const rssKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(run.stderr)?.[1] ?? 0);
  const memAfter = await usedMemory(redis);
  const perChunk = (memAfter - memBefore) / line.units;
  const rows: Array<[string, string, string]> = [
    ['input', `${(bytes / 1024 / 1024).toFixed(0)} MB ${values.zip ? '.zip' : 'JSON'} (${generated.conversations} conversations)`, ''],
    ['chunks enqueued', String(line.units), ''],
    ['wall time', `${wall.toFixed(1)} s`, wall < 15 ? 'ok (< 15 s)' : 'OVER 15 s'],
    ['peak RSS', `${(rssKb / 1024).toFixed(0)} MB`, rssKb < 512 * 1024 ? 'ok (< 512 MB)' : 'OVER 512 MB'],
    ['Redis per chunk', `${perChunk.toFixed(0)} B`, perChunk < 2048 ? 'ok (< 2 KB)' : 'OVER 2 KB'],
  ];
  for (const [k, v, verdict] of rows) console.log(`${k.padEnd(18)} ${v.padEnd(44)} ${verdict}`);
} finally {
  await purgePrefix(redis, prefix);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
}

async function usedMemory(r: Redis): Promise<number> {
  const info = await r.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

function parseTime(s: string): number {
  const parts = s.trim().split(':').map(Number);
  return parts.reduce((acc, x) => acc * 60 + x, 0);
}
