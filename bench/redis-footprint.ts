/**
 * Redis holds only work in flight (issue 8, item 6): runs many documents through the whole
 * pipeline (real Redis, the engine emulator at high speed, a worker and the writer in this
 * process) and prints what Redis holds while they are queued (before any worker runs: what to
 * size Redis for) and once every document is written: bytes per unit and per document, by kind
 * of key, and whether any engine answer is left.
 *
 *   node_modules/.bin/node bench/redis-footprint.ts [--docs 300] [--pages 3] [--exports 3]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { numberedPdf } from '../scripts/lib/pdf-writer.ts';
import { loadConfig, type Config } from '../src/config.ts';
import { startEmulator } from '../src/emulator/index.ts';
import { createInferWorker } from '../src/infer/worker-parts.ts';
import { enqueueFiles } from '../src/ingest/batch.ts';
import { silentLogger } from '../src/observe/log.ts';
import { waitForDocs } from '../src/observe/progress.ts';
import { purgePrefix } from '../src/store/admin.ts';
import { LocalBlobStore } from '../src/store/blobs-local.ts';
import { DocStore } from '../src/store/docs.ts';
import { createWriter } from '../src/write/writer.ts';
import { generateChatgptExport } from './lib/chatgpt-gen.ts';
import { footprint } from './lib/redis-footprint.ts';

const { values } = parseArgs({
  options: {
    docs: { type: 'string', default: '300' },
    pages: { type: 'string', default: '3' },
    exports: { type: 'string', default: '3' },
    'redis-url': { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const docs = Number(values.docs);
const pages = Number(values.pages);
const exportsCount = Number(values.exports);

const dir = await mkdtemp(join(tmpdir(), 'docbatch-footprint-'));
const prefix = `bench-footprint-${process.pid}`;
const log = silentLogger();
const engine = await startEmulator({ speed: 200, outputTokensMin: 20, outputTokensMax: 60 });
const config: Config = {
  ...loadConfig({}, {}),
  redisUrl: values['redis-url'],
  prefix,
  engineUrl: engine.url,
  outDir: join(dir, 'out'),
  blobDir: join(dir, 'blobs'),
  renderers: 2,
  logLevel: 'silent',
  initialInFlight: 64,
};
const redis = new Redis(config.redisUrl);
try {
  const files: string[] = [];
  for (let i = 0; i < docs; i++) {
    const path = join(dir, `doc-${i}.pdf`);
    await writeFile(path, numberedPdf(pages, i + 1));
    files.push(path);
  }
  for (let i = 0; i < exportsCount; i++) {
    const path = join(dir, `export-${i}.json`);
    await generateChatgptExport({ path, targetBytes: 400_000, seed: 100 + i });
    files.push(path);
  }
  await new LocalBlobStore(config.blobDir).markStore();
  const line = (s: string) => process.stdout.write(`${s}\n`);
  const table = (fp: Awaited<ReturnType<typeof footprint>>, units: number) => {
    line('| kind of key | keys | bytes | bytes per unit |');
    line('|---|---|---|---|');
    for (const [kind, v] of Object.entries(fp.byKind).sort((a, b) => b[1].bytes - a[1].bytes)) {
      line(`| ${kind} | ${v.keys} | ${v.bytes} | ${(v.bytes / units).toFixed(1)} |`);
    }
  };
  // Queued: everything registered, no worker yet (the feeder put FEED_DEPTH units into BullMQ).
  const outcomes = await enqueueFiles(files, config, log);
  const ids = outcomes.flatMap((o) => (o.runs ?? []).map((r) => r.docId));
  const store = new DocStore(redis, prefix);
  const queuedUnits = (await store.getMany(ids)).reduce((n, r) => n + r.units, 0);
  const queued = await footprint(redis, prefix);
  line(`${ids.length} documents (${docs} PDFs of ${pages} pages, ${exportsCount} chat exports), ${queuedUnits} units`);
  line('');
  line(`Queued, no worker running (FEED_DEPTH ${config.feedDepth}): ${queued.keys} keys, ${queued.bytes} bytes = ${(queued.bytes / queuedUnits).toFixed(0)} B per unit, ${(queued.bytes / ids.length).toFixed(0)} B per document`);
  line('');
  table(queued, queuedUnits);

  const commands = async () => Number(/total_commands_processed:(\d+)/.exec(await redis.info('stats'))?.[1] ?? 0);
  const worker = createInferWorker(config, log);
  const writer = createWriter(config, log, { reconcileIntervalMs: 2000 });
  const commandsBefore = await commands();
  const started = performance.now();
  await worker.start();
  await writer.start();
  const done = await waitForDocs(store, ids, { intervalMs: 500 });
  const seconds = (performance.now() - started) / 1000;
  const commandsRun = (await commands()) - commandsBefore;
  await worker.close();
  await writer.close();
  const units = done.reduce((n, d) => n + d.record.units, 0);
  const fp = await footprint(redis, prefix);
  line('');
  line(`Written in ${seconds.toFixed(1)} s. Redis after every document was written: ${fp.keys} keys, ${fp.bytes} bytes = ${(fp.bytes / units).toFixed(0)} B per unit, ${(fp.bytes / ids.length).toFixed(0)} B per document`);
  line(`keys holding engine answers: ${fp.resultKeys.length}`);
  line(`Redis commands while working: ${commandsRun} = ${(commandsRun / units).toFixed(1)} per unit (every process of this Redis counted: run it on an otherwise idle Redis)`);
  line('');
  table(fp, units);
} finally {
  await purgePrefix(redis, prefix);
  redis.disconnect();
  await engine.close();
  await rm(dir, { recursive: true, force: true });
}
