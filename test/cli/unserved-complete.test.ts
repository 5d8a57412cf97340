/**
 * A document whose units are all answered (state `complete`) waits for the writer, not for a
 * worker. With its workers gone (EXIT_WHEN_IDLE_SECONDS, scaled to zero) and the writer slow or
 * not started, `enqueue --wait` said "no worker has a heartbeat … start one (docbatch worker)"
 * about it; and nothing said that no writer ran (writers had no heartbeat). Now `--wait` and
 * `status` say that, and `status` lists writers. A real worker answers the document (no writer
 * runs), stops; the real CLI waits; then a real writer comes and writes it.
 */
import { spawn } from 'node:child_process';
import { afterEach, expect, it } from 'vitest';
import { silentLogger } from '../../src/observe/log.ts';
import { createWriter } from '../../src/write/writer.ts';
import { BIN, runCli } from '../helpers/cli.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { corpusFile } from '../render/fixtures.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

it('enqueue --wait says nothing of workers for a document only the writer has left to do', async () => {
  p = await startPipeline({ file: import.meta.filename });
  await p.writer.close();
  const PDF = corpusFile('sizes.pdf');
  const [id] = acceptedIds(await p.enqueue([PDF]));
  for (const end = Date.now() + 30_000; (await p.store.get(id!))?.state !== 'complete'; await new Promise((r) => setTimeout(r, 100))) {
    if (Date.now() > end) throw new Error('timed out waiting for the document to be answered');
  }
  await p.worker!.close({ deadlineMs: 2000 });
  // `--wait` says what holds the work up at once, not after its default 10 s (WAIT_NOTES_AFTER_MS):
  // the worker and the writer are gone, their heartbeats with them, before it starts.
  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, LOG_FORMAT: 'json', WAIT_NOTES_AFTER_MS: '0' };
  const child = spawn(BIN, ['enqueue', PDF, '--wait'], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // Wait for the writer's note, said with any other.
  for (const end = Date.now() + 40_000; !/no writer has a heartbeat/.test(stderr) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setTimeout(r, 500));
  child.kill('SIGKILL');
  expect(stderr).toMatch(/running|complete|total/);
  expect(stderr).not.toMatch(/no worker has a heartbeat/);
  // What it waits for is a writer, and none runs: said (it was not; writers had no heartbeat).
  expect(stderr).toMatch(/! no writer has a heartbeat under this prefix \(none started\): 1 document has every unit answered and waits to be written; start one \(docbatch writer\)/);
  const status = await runCli(['status'], env, { timeoutMs: 30_000 });
  expect(status.stdout).toMatch(/^no writer has a heartbeat under this prefix \(none started\): 1 document has every unit answered and waits to be written/m);
  expect(status.stdout).not.toMatch(/^writers:/m);

  // A writer comes: status lists it, the note goes, the document is written.
  const writer = createWriter(p.config, silentLogger(), { reconcileIntervalMs: 500 });
  await writer.start();
  try {
    const [final] = await p.wait([id!], 30_000);
    expect(final!.record.state).toBe('written');
    const json = await runCli(['status', '--json'], env, { timeoutMs: 30_000 });
    const writers = json.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((o) => 'writers' in o);
    expect(writers).toMatchObject({ writers: [{ name: p.config.workerName, written: expect.any(Number), silent: false, problem: null }] });
    const text = await runCli(['status'], env, { timeoutMs: 30_000 });
    expect(text.stdout).toMatch(/^writers: 1, all writing$/m);
    expect(text.stdout).not.toMatch(/no writer has a heartbeat/);
  } finally {
    await writer.close();
  }
  // A writer that stopped takes its heartbeat with it (not a silent one for an hour).
  expect(await p.redis.hget(`${p.config.prefix}:writers`, p.config.workerName)).toBeNull();
}, 120_000);
