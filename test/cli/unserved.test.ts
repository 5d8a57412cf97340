/**
 * Work no running worker takes waits for ever: `enqueue --wait --model <typo>` counted "1 queued"
 * with nothing else to say, and `status` said all workers were taking work. Both now say which
 * model no worker serves (and which models the running ones do). A real worker (its heartbeat),
 * the real CLI.
 */
import { spawn } from 'node:child_process';
import { afterEach, expect, it } from 'vitest';
import { BIN, runCli } from '../helpers/cli.ts';
import { startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { until } from '../helpers/until.ts';
import { corpusFile } from '../render/fixtures.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

const PDF = corpusFile('sizes.pdf');

it('enqueue --wait and status say a model no running worker serves', async () => {
  p = await startPipeline({ file: import.meta.filename });
  // `--wait` says what holds the work up at once, not after its default 10 s (WAIT_NOTES_AFTER_MS):
  // the heartbeat it reads is there before it starts.
  await until("the worker's heartbeat", async () => (await p!.redis.hget(`${p!.config.prefix}:workers`, p!.config.workerName)) !== null);
  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, LOG_FORMAT: 'json', WAIT_NOTES_AFTER_MS: '0' };
  const child = spawn(BIN, ['enqueue', PDF, '--model', 'model-aa', '--wait'], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    const said = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 40_000);
      child.stderr.on('data', () => {
        if (stderr.includes('no running worker serves it')) {
          clearTimeout(timer);
          resolve(true);
        }
      });
    });
    expect(said).toBe(true);
    expect(stderr).toMatch(/! model "model-aa" \(1 document\): no running worker serves it, so its work waits; start a worker whose engine serves it \(running workers serve "docbatch\/emulated-vl"\)/);
    const status = await runCli(['status'], env, { timeoutMs: 30_000 });
    expect(status.stdout).toMatch(/workers: 1, all taking work/);
    expect(status.stdout).toMatch(/model "model-aa" \(1 document\): no running worker serves it/);
  } finally {
    child.kill('SIGKILL');
  }
}, 60_000);
