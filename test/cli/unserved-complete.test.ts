/**
 * A document whose units are all answered (state `complete`) waits for the writer, not for a
 * worker. With its workers gone (EXIT_WHEN_IDLE_SECONDS, scaled to zero) and the writer slow or
 * not started, `enqueue --wait` said "no worker has a heartbeat … start one (docbatch worker)"
 * about it. A real worker answers the document (no writer runs), stops; the real CLI waits.
 */
import { spawn } from 'node:child_process';
import { afterEach, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.ts';
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
  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, LOG_FORMAT: 'json' };
  const child = spawn(BIN, ['enqueue', PDF, '--wait'], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise((r) => setTimeout(r, 13_000)); // notes start after 10 s
  child.kill('SIGKILL');
  expect(stderr).toMatch(/running|complete|total/);
  expect(stderr).not.toMatch(/no worker has a heartbeat/);
}, 60_000);
