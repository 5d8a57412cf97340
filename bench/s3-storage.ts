/**
 * What object storage costs: the same documents end to end with BLOB_DIR and OUT_DIR in local
 * folders, then on `s3://` (inputs enqueued from `s3://bench/in/`), with an instant engine.
 *
 *   node_modules/.bin/node bench/s3-storage.ts [--pages 40] [--docs 2] [--conversations 400] [--rounds 2]
 *
 * docbatch runs as a user runs it: `docbatch engine` (the emulator, 1000x speed, 1-2 token
 * replies), a worker and a writer as separate processes on a real Redis (REDIS_URL, throwaway
 * prefix); the S3 side is s3rver (a real S3-protocol server in Node, storing in a temp folder, in
 * this process) on loopback, so the figure is docbatch's own overhead of going through the S3
 * protocol (listing, ranged GETs, uploads, the render cache), not a cloud's latency. Two clocks:
 * `enqueue` alone (validate and store; no worker running), and `enqueue --wait` end to end.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import S3rver from 's3rver';
import { numberedPdf } from '../scripts/lib/pdf-writer.ts';
import { purgePrefix } from '../src/store/admin.ts';
import { BIN, startDocbatch, stopChild } from './lib/cli.ts';

const { values } = parseArgs({
  options: {
    pages: { type: 'string', default: '40' },
    docs: { type: 'string', default: '2' },
    conversations: { type: 'string', default: '400' },
    rounds: { type: 'string', default: '2' },
  },
});
const cores = availableParallelism();
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

function start(args: string[], env: Record<string, string>) {
  return startDocbatch(args, env, { clean: true });
}

const stop = stopChild;

/** `docbatch enqueue` timed; asynchronous, so that s3rver (in this process) keeps answering. */
async function enqueue(inputs: string[], env: Record<string, string>, wait: boolean): Promise<number> {
  const t0 = performance.now();
  const child = spawn(BIN, ['enqueue', ...(wait ? ['--wait'] : []), '--json', ...inputs], { env: { PATH: process.env.PATH!, ...env, LOG_FORMAT: 'json' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  clearTimeout(timer);
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`enqueue exited ${code}: ${stderr.slice(-1500)}`);
  return seconds;
}

const dir = mkdtempSync(join(tmpdir(), 'docbatch-bench-s3-'));
const s3dir = join(dir, 's3rver');
mkdirSync(s3dir);
const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: s3dir });
const { port } = await server.run();
const endpoint = `http://127.0.0.1:${port}`;
const s3Env = { AWS_ENDPOINT_URL: endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', S3_FORCE_PATH_STYLE: 'true' };
const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });

try {
  await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
  const inputs = join(dir, 'in');
  mkdirSync(inputs);
  const pages = Number(values.pages);
  const files: Record<string, Buffer> = {};
  for (let d = 0; d < Number(values.docs); d++) files[`book-${d}.pdf`] = numberedPdf(pages, 80 + d);
  files['chats.jsonl'] = Buffer.from(
    Array.from({ length: Number(values.conversations) }, (_, i) =>
      JSON.stringify({ id: `c${i}`, title: `Conversation ${i}`, messages: [{ role: 'user', content: `Question ${i}: ${'what happened next? '.repeat(10)}` }, { role: 'assistant', content: `Answer ${i}: ${'the story moves on. '.repeat(40)}` }] }),
    ).join('\n') + '\n',
  );
  for (const [name, bytes] of Object.entries(files)) {
    writeFileSync(join(inputs, name), bytes);
    await client.send(new PutObjectCommand({ Bucket: 'bench', Key: `in/${name}`, Body: bytes }));
  }
  const units = Number(values.docs) * pages + Number(values.conversations);

  const results: Record<string, { enqueue: number; total: number }> = {};
  for (const mode of ['local', 's3'] as const) {
    let best = { enqueue: Infinity, total: Infinity };
    for (let round = 0; round < Number(values.rounds); round++) {
      const tag = `${mode}-${round}`;
      const storage = mode === 'local'
        ? (sub: string) => ({ BLOB_DIR: join(dir, `blobs-${tag}-${sub}`), OUT_DIR: join(dir, `out-${tag}-${sub}`) })
        : (sub: string) => ({ ...s3Env, BLOB_DIR: `s3://bench/blobs-${tag}-${sub}`, OUT_DIR: `s3://bench/out-${tag}-${sub}`, CACHE_DIR: join(dir, `cache-${tag}-${sub}`) });
      const source = mode === 'local' ? [inputs] : ['s3://bench/in/'];
      // enqueue alone: validate, store, queue (no worker).
      const alone = `bench-s3-${process.pid}-${tag}-a`;
      const t1 = await enqueue(source, { REDIS_URL: redisUrl, DOCBATCH_PREFIX: alone, ...storage('a') }, false);
      // end to end.
      const prefix = `bench-s3-${process.pid}-${tag}-e`;
      const env = { REDIS_URL: redisUrl, DOCBATCH_PREFIX: prefix, ...storage('e') };
      if (mode === 'local') mkdirSync(env.BLOB_DIR, { recursive: true }); // one machine: the folder is there before the worker looks
      const engine = start(['engine', '--port', '0', '--speed', '1000', '--output-tokens-min', '1', '--output-tokens-max', '2'], {});
      const engineUrl = await engine.url;
      const worker = start(['worker'], { ...env, ENGINE_URL: engineUrl, RENDERERS: String(cores) });
      const writer = start(['writer'], env);
      let t2 = Infinity;
      try {
        await new Promise((r) => setTimeout(r, 1500)); // renderers warm, as in a running worker
        t2 = await enqueue(source, env, true);
      } finally {
        await Promise.all([stop(worker.child), stop(writer.child), stop(engine.child)]);
        const redis = new Redis(redisUrl);
        await purgePrefix(redis, alone);
        await purgePrefix(redis, prefix);
        redis.disconnect();
      }
      best = { enqueue: Math.min(best.enqueue, t1), total: Math.min(best.total, t2) };
    }
    results[mode] = best;
  }
  const load = loadavg().map((l) => l.toFixed(2)).join(', ');
  console.log(`${units} units (${values.docs} PDFs x ${pages} pages, 1 JSONL export of ${values.conversations} conversations), instant engine, ${cores} cores, best of ${values.rounds}; load average ${load}`);
  console.log('| storage | enqueue alone (s) | enqueue --wait (s) | units/s end to end | x local |');
  console.log('|---|---:|---:|---:|---:|');
  for (const [mode, r] of Object.entries(results)) {
    console.log(`| ${mode === 'local' ? 'folders' : 's3:// (s3rver, loopback)'} | ${r.enqueue.toFixed(2)} | ${r.total.toFixed(2)} | ${(units / r.total).toFixed(1)} | ${(results.local!.total / r.total).toFixed(2)} |`);
  }
} finally {
  client.destroy();
  server.httpServer.closeAllConnections();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}
