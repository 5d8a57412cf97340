/**
 * Work that names no model goes to the shared queue `infer`, which a text-only worker does not
 * take (queues/routes.ts). With only text-only workers running, a PDF enqueued without --model
 * waits for ever; `status` said "all taking work" and nothing about it (unservedWork skipped every
 * document without a model). A real text-only worker (its heartbeat), the real CLI.
 */
import { afterEach, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { corpusFile } from '../render/fixtures.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

it('status says work of the shared queue no running worker takes (only text-only workers)', async () => {
  p = await startPipeline({ file: import.meta.filename, emulator: { acceptsImages: false }, config: { textOnly: true } });
  expect(p.worker!.queueNames()).not.toContain('infer');
  const ids = acceptedIds(await p.enqueue([corpusFile('sizes.pdf')]));
  expect(ids).toHaveLength(1);
  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, LOG_FORMAT: 'json' };
  const status = await runCli(['status'], env, { timeoutMs: 30_000 });
  expect(status.stdout).toMatch(/no running worker takes work that names no model/);
}, 60_000);
