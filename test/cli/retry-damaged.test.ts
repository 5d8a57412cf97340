/**
 * `docbatch retry` of several documents, one of which cannot be retried (its results archive
 * damaged, or gone): that one is said with its code and place, the others are retried. Before,
 * the first such document ended the command (ARCHIVE_CORRUPT, or a bare SyntaxError before
 * that): the documents after it were not retried, and nothing said they were not.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { runCli } from '../helpers/cli.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline;
beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename });
}, 60_000);
afterAll(async () => {
  await p?.stop();
});

it('a document whose archive is damaged is said, with its code and line; the others are retried', async () => {
  const files = ['a-damaged.pdf', 'b-fine.pdf'].map((name, i) => {
    const path = join(p.dir, name);
    writeFileSync(path, numberedPdf(2 + i));
    return path;
  });
  const [damaged, fine] = acceptedIds(await p.enqueue(files));
  const first = await p.wait([damaged!, fine!]);
  expect(first.map((d) => d.record.state)).toEqual(['written', 'written']);
  const folder = join(p.config.blobDir, 'named', 'results', damaged!);
  const archive = join(folder, readdirSync(folder)[0]!);
  writeFileSync(archive, readFileSync(archive, 'utf8').replace(/^\[0,/, '[0,{'));

  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir };
  const r = await runCli(['retry', '--rewrite', '--wait', damaged!, fine!], env, { timeoutMs: 60_000 });
  expect(r.stderr).toContain(`docbatch: ${damaged} (${files[0]}): not retried: ${archive}: line 1: ARCHIVE_CORRUPT: the results archive is damaged`);
  expect(r.stderr).not.toMatch(/unexpected error|\n\s+at /);
  expect(r.stdout).toContain(`${fine}  writing again`);
  expect(r.stdout).toMatch(new RegExp(`${fine}  written .*b-fine\\.pdf: 3/3 done`));
  expect(r.code).toBe(1);
  expect((await p.store.get(fine!))!.writtenAt).not.toBe(first[1]!.record.writtenAt);

  const json = await runCli(['retry', '--rewrite', '--json', damaged!], env, { timeoutMs: 60_000 });
  expect(JSON.parse(json.stdout.trim())).toMatchObject({ docId: damaged, error: { code: 'ARCHIVE_CORRUPT' } });
  expect(json.code).toBe(1);
}, 120_000);

it('--code that is no error code is refused, naming the code it looks like: it matched nothing and retried nothing, silently', async () => {
  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir };
  const r = await runCli(['retry', '--code', 'ENGINE_TIMEOT', 'd0000'], env, { timeoutMs: 30_000 });
  expect(r.stderr).toBe('docbatch: CONFIG_INVALID: --code ENGINE_TIMEOT is not an error code (did you mean "ENGINE_TIMEOUT"?) (docs/errors.md lists them)\n');
  expect(r.code).toBe(2);
}, 60_000);
