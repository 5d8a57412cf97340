/**
 * A document run again (`enqueue --force`, `retry`) whose JSON document unit fails this time has
 * no X.json: the X.json of its earlier run stood beside a report saying the unit failed, and a
 * script (or `docbatch eval`) took the old answer for this run's. The writer now removes it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { runCli } from '../helpers/cli.ts';
import { startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

it('an X.json of an earlier run does not outlive a run whose unit failed', async () => {
  p = await startPipeline({ file: import.meta.filename });
  const pdf = join(p.dir, 'invoice.pdf');
  writeFileSync(pdf, numberedPdf(1));
  const schema = join(p.dir, 'schema.json');
  writeFileSync(schema, JSON.stringify({ type: 'object', properties: { title: { type: 'string' } }, required: ['title'] }));
  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir };
  const args = ['enqueue', pdf, '--schema', schema, '--prompt', 'Extract the title.', '--unit', 'document', '--wait'];
  expect((await runCli(args, env, { timeoutMs: 60_000 })).code).toBe(0);
  const json = join(p.config.outDir, 'invoice.json');
  expect(JSON.parse(readFileSync(json, 'utf8'))).toHaveProperty('title');

  p.engine.setFaults({ reject: { matchText: ['Page 1 of 1'] } });
  expect((await runCli([...args, '--force'], env, { timeoutMs: 60_000 })).code).toBe(1);
  const report = JSON.parse(readFileSync(join(p.config.outDir, 'invoice.report.json'), 'utf8')) as Record<string, unknown>;
  expect(report).toMatchObject({ generation: 2, completed: 0, failures_by_code: { BAD_REQUEST: 1 }, outputs: [join(p.config.outDir, 'invoice.report.json')] });
  expect(existsSync(json)).toBe(false);
}, 120_000);
