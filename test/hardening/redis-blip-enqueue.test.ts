/**
 * `docbatch enqueue --wait` while Redis blips for a few seconds. The producer's own writes (a
 * document's record) may fail fast, but once every document is registered, nothing left to do
 * can lose them: the last top-up of the wait lists is only a head start (workers feed from the
 * fair round themselves), and the wait rides out the outage. Before, a blip that hit the last
 * top-up exited 2 (REDIS_UNREACHABLE: "Reached the max retries per request") though every
 * document had gone in and was then written: about one run in four with a 3 s blip.
 * Redis goes away behind a TCP forwarder (test/helpers/redis-proxy.ts).
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { enqueueFiles } from '../../src/ingest/batch.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { BIN } from '../helpers/cli.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { startRedisProxy, type RedisProxy } from '../helpers/redis-proxy.ts';

let p: Pipeline | undefined;
let proxy: RedisProxy | undefined;
afterEach(async () => {
  await proxy?.close();
  await p?.stop();
  p = undefined;
  proxy = undefined;
});

it('Redis going away once the last document is registered does not fail the enqueue: its units are fed and written', async () => {
  proxy = await startRedisProxy();
  p = await startPipeline({ file: import.meta.filename });
  const files = ['a', 'b'].map((n, i) => {
    const path = join(p!.dir, `${n}.pdf`);
    writeFileSync(path, numberedPdf(3, 10 + i));
    return path;
  });
  let seen = 0;
  // The producer talks to Redis through the forwarder; the worker and the writer do not.
  const outcomes = await enqueueFiles(files, { ...p.config, redisUrl: proxy.url }, silentLogger(), {
    onOutcome: () => {
      // The last document is registered: Redis goes away before the producer's final top-up.
      if (++seen === files.length) void proxy!.down();
    },
  });
  const ids = acceptedIds(outcomes);
  expect(ids).toHaveLength(2);
  const done = await p.wait(ids, 60_000);
  for (const d of done) expect(d.record).toMatchObject({ state: 'written', done: 3, failed: 0 });
}, 90_000);

it('`enqueue --wait` rides out Redis going away for 3 s during the wait, and exits 0 once all is written', async () => {
  proxy = await startRedisProxy();
  p = await startPipeline({ file: import.meta.filename, emulator: { speed: 5 } });
  const files = ['c', 'd'].map((n, i) => {
    const path = join(p!.dir, `${n}.pdf`);
    writeFileSync(path, numberedPdf(12, 20 + i));
    return path;
  });
  const env = { REDIS_URL: proxy.url, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, LOG_FORMAT: 'json' };
  const child = spawn(BIN, ['enqueue', ...files, '--wait'], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 80_000);
  try {
    // Both documents in, and the wait under way (its progress lines on stderr).
    for (let i = 0; i < 300 && !(/enqueued[\s\S]*enqueued/.test(stdout) && /running/.test(stderr)); i++) await new Promise((r) => setTimeout(r, 50));
    expect(stderr).toMatch(/running/);
    await proxy.down();
    await new Promise((r) => setTimeout(r, 3000));
    await proxy.up();
    expect(await exited, `${stdout}\n${stderr}`).toBe(0);
  } finally {
    clearTimeout(killer);
  }
  expect(stdout.match(/ written /g)).toHaveLength(2);
  expect(stderr).not.toMatch(/REDIS_UNREACHABLE/);
}, 90_000);
