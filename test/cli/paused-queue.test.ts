/**
 * A queue paused in Bull Board (Pause, i.e. BullMQ's queue.pause()) stops every worker of it,
 * and no heartbeat shows that: the workers run, are not paused themselves, and `status` said
 * "all taking work" while nothing moved; `--wait` said nothing; /metrics had no sign of it.
 * Now `status` and `--wait` say the queue is paused, and `docbatch_queue_paused{queue}` is 1.
 * Real Redis, a real worker, writer and emulator, the real CLI.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openQueue } from '../../queues/connect.ts';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { openQueueCounter, registerQueueMetrics } from '../../src/observe/metrics.ts';
import { BIN, runCli } from '../helpers/cli.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { parseMetrics, sumOf } from '../observe/fixtures.ts';

let p: Pipeline;
beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename });
}, 60_000);
afterAll(async () => {
  await p?.stop();
});

it('status, --wait and /metrics say the infer queue is paused; once resumed the document is written', async () => {
  const infer = openQueue('infer', p.config, p.redis);
  const counter = openQueueCounter(p.config);
  try {
    await infer.pause();
    const pdf = join(p.dir, 'held.pdf');
    writeFileSync(pdf, numberedPdf(3));
    const [id] = acceptedIds(await p.enqueue([pdf]));
    // `--wait` says what holds the work up at once, not after its default 10 s (WAIT_NOTES_AFTER_MS):
    // the queue is paused before it starts.
    const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, LOG_FORMAT: 'json', WAIT_NOTES_AFTER_MS: '0' };
    const note = /queue "infer" is paused \(1 document\): no worker takes its work until it is resumed/;

    const status = await runCli(['status'], env, { timeoutMs: 30_000 });
    expect(status.stdout).toMatch(note);

    const registry = new Registry();
    registerQueueMetrics(registry, counter.queues);
    const m = parseMetrics(await registry.metrics());
    expect(sumOf(m, 'docbatch_queue_paused', { queue: 'infer' })).toBe(1);
    expect(sumOf(m, 'docbatch_queue_paused', { queue: 'write' })).toBe(0);

    const child = spawn(BIN, ['enqueue', pdf, '--wait'], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    for (const end = Date.now() + 40_000; !note.test(stderr) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGKILL');
    expect(stderr).toMatch(new RegExp(`! ${note.source}`));
    expect((await p.store.get(id!))!.done).toBe(0);

    await infer.resume();
    const [final] = await p.wait([id!], 30_000);
    expect(final!.record.state).toBe('written');
    const after = await runCli(['status'], env, { timeoutMs: 30_000 });
    expect(after.stdout).not.toMatch(/is paused/);
    expect(sumOf(parseMetrics(await registry.metrics()), 'docbatch_queue_paused', { queue: 'infer' })).toBe(0);
  } finally {
    await infer.close();
    await counter.close();
  }
}, 120_000);
