/**
 * Redis restarted with no persistence (`redis-server --save "" --appendonly no`, as CI runs it)
 * while work is in flight: every record, queue and result is gone. `enqueue --wait` says so
 * (DOC_GONE, naming the documents and what to do) instead of waiting for ever; the worker says
 * once that the jobs it held are gone and what to do (before: one "queue error" line per unit in
 * flight); the worker and the writer carry on by themselves, and enqueueing the same file again
 * redoes it: every page once.
 * A Redis of its own, on its own port; the shared one is not touched.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { startPrivateRedis, type PrivateRedis } from '../../src/demo/private-redis.ts';
import { createLogger } from '../../src/observe/log.ts';
import { Writable } from 'node:stream';
import { BIN, runCli } from '../helpers/cli.ts';
import { parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
let redis: PrivateRedis | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
  await redis?.stop();
  redis = undefined;
});

it('enqueue --wait says the documents are gone and how to recover; enqueued again, every page is written once', async () => {
  redis = await startPrivateRedis();
  const lines: Array<{ msg: string; units?: number }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as { msg: string });
      done();
    },
  });
  const log = createLogger({ level: 'info', destination: sink });
  p = await startPipeline({ file: import.meta.filename, emulator: { speed: 0.5 }, config: { redisUrl: redis.url, lockDurationMs: 3000, stalledIntervalMs: 1000 }, log });
  const pdf = join(p.dir, 'wiped.pdf');
  writeFileSync(pdf, numberedPdf(30));
  const env = { PATH: process.env.PATH!, REDIS_URL: redis.url, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir };
  const child = spawn(BIN, ['enqueue', pdf, '--wait'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  try {
    let docId: string | undefined;
    for (const end = Date.now() + 30_000; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
      docId ??= /^(d[0-9a-f]{20})  enqueued/m.exec(stdout)?.[1];
      if (docId && ((await p.store.get(docId))?.done ?? 0) >= 3) break;
    }
    const record = (await p.store.get(docId!))!;
    expect(record.done).toBeGreaterThanOrEqual(3);
    expect(record.state).toBe('running');
    // Redis restarts empty on the same port.
    const port = redis.port;
    await redis.stop();
    redis = await startPrivateRedis({ port });
    const started = Date.now();
    expect(await exited).toBe(1);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(stderr).toContain(`DOC_GONE: 1 of the 1 documents waited for no longer exist in Redis (${docId})`);
    expect(stderr).toMatch(/Redis lost its data .*enqueue the same files again/);
    // The worker: one warning for the units it held, not a queue error each.
    for (const end = Date.now() + 10_000; Date.now() < end && !lines.some((l) => /are gone from Redis/.test(l.msg)); ) await new Promise((r) => setTimeout(r, 100));
    const gone = lines.filter((l) => /are gone from Redis/.test(l.msg));
    expect(gone).toHaveLength(1);
    expect(gone[0]!.units).toBeGreaterThan(1);
    expect(gone[0]!.msg).toMatch(/Redis lost its data: restarted without persistence.*enqueue the same files again/);
    expect(lines.filter((l) => /queue error/.test(l.msg))).toEqual([]);
  } finally {
    clearTimeout(killer);
    child.kill('SIGKILL');
  }
  // The worker and the writer carried on: the same file enqueued again is done, every page once.
  const again = await runCli(['enqueue', pdf, '--wait'], env, { timeoutMs: 90_000 });
  expect(again.code, again.stdout + again.stderr).toBe(0);
  const md = readFileSync(join(p.config.outDir, 'wiped.md'), 'utf8');
  expect([...md.matchAll(/^<!-- page (\d+)/gm)].map((m) => Number(m[1]))).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  for (const [n, page] of parsePages(md)) expect(page.body, `page ${n}`).toContain(`Page ${n} of 30`);
}, 150_000);
