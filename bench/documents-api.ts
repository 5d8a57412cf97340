/**
 * How fast the dashboard's Documents view answers as documents pile up (issue 14): writes N
 * document records (as the producer and the writer leave them: written, a few running, some with
 * failed units) under a fresh prefix of a real Redis, starts the dashboard on port 0, and times
 * `GET /api/documents` (a page, no search: reads the page and counts the newest 5,000 by state),
 * a search by part of a file name (reads the newest 50,000 records), a state filter, and the HTML
 * page, each the median of several requests. Then removes the prefix.
 *
 *   node_modules/.bin/node bench/documents-api.ts [--docs 10000] [--runs 5]
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config.ts';
import { startDashboard } from '../src/observe/dashboard.ts';
import { silentLogger } from '../src/observe/log.ts';
import { purgePrefix } from '../src/store/admin.ts';

const { values } = parseArgs({
  options: {
    docs: { type: 'string', default: '10000' },
    runs: { type: 'string', default: '5' },
    'redis-url': { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const docs = Number(values.docs);
const runs = Number(values.runs);
const prefix = `bench-documents-${process.pid}`;
const redis = new Redis(values['redis-url']);

const t0 = Date.parse('2026-01-01T00:00:00Z');
for (let start = 0; start < docs; start += 1000) {
  const pipe = redis.pipeline();
  for (let i = start; i < Math.min(docs, start + 1000); i++) {
    const docId = `d${i.toString(16).padStart(20, '0')}`;
    const name = `archive-${String(i).padStart(6, '0')}-${['invoice', 'minutes', 'contract', 'report'][i % 4]}`;
    const running = i >= docs - 20;
    const units = 5 + (i % 40);
    const failed = i % 17 === 0 ? 1 + (i % 3) : 0;
    const done = running ? Math.floor(units / 2) : units - failed;
    const meta = {
      docId, kind: 'pdf', source: `/data/inbox/2026/${name}.pdf`, sha256: docId.padEnd(64, '0'), name, outSub: '', units, feedUnits: units,
      blob: docId.padEnd(64, 'a'), pages: units, task: { name: 'transcribe', unit: 'page', output: 'text', hash: 'h'.repeat(16), blob: 'b'.repeat(64) },
      model: null, queue: 'infer', priority: 0, enqueuedAt: new Date(t0 + i * 1000).toISOString(),
    };
    pipe.hset(`${prefix}:doc:${docId}`, {
      meta: JSON.stringify(meta), gen: 1, units, state: running ? 'running' : 'written', done, failed,
      prompt_tokens: units * 900, completion_tokens: units * 300, engine_ms: units * 1200,
      created_at: meta.enqueuedAt, started_at: new Date(t0 + i * 1000 + 500).toISOString(),
      ...(running ? {} : { finished_at: new Date(t0 + i * 1000 + 9000).toISOString(), written_at: new Date(t0 + i * 1000 + 9500).toISOString(), files: JSON.stringify([`/data/out/${name}.md`, `/data/out/${name}.report.json`]) }),
    });
    pipe.zadd(`${prefix}:docs`, t0 + i * 1000, docId);
  }
  await pipe.exec();
}

const config = { ...loadConfig({}, {}), redisUrl: values['redis-url'], prefix, dashboardPort: 0, logLevel: 'silent' as const };
const dash = await startDashboard(config, silentLogger());
async function median(path: string): Promise<{ ms: number; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  for (let k = 0; k < runs; k++) {
    const started = performance.now();
    const res = await fetch(`${dash.url}${path}`);
    bytes = (await res.arrayBuffer()).byteLength;
    if (!res.ok) throw new Error(`${path}: ${res.status}`);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)]!, bytes };
}

try {
  console.log(`${docs} documents; median of ${runs} requests each`);
  console.log('request                                   ms      bytes');
  for (const path of ['/api/documents', '/api/documents?page=50', '/api/documents?q=minutes', '/api/documents?q=000123', '/api/documents?state=running', '/documents', '/documents?q=contract']) {
    const { ms, bytes } = await median(path);
    console.log(`${path.padEnd(38)} ${ms.toFixed(1).padStart(7)} ${String(bytes).padStart(10)}`);
  }
} finally {
  await dash.close();
  await purgePrefix(redis, prefix);
  redis.disconnect();
}
