/**
 * The output files of one document are a family: `X.md`, `X.json` or `X.jsonl`, and
 * `X.report.json` (`X.compare.json` for an input's runs on several models). A document whose
 * own name ends in another family's suffix must not write that family's file: under a JSON task
 * on whole documents, `a.report.pdf` answered into `a.report.json`, the report of `a.pdf` beside
 * it, and one of the two was lost (both records listed the file).
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { baseNameOf } from '../../src/ingest/prepare.ts';
import { runCli } from '../helpers/cli.ts';
import { startPipeline, type Pipeline } from '../helpers/pipeline.ts';

const SCHEMA = { type: 'object', properties: { title: { type: 'string' } }, required: ['title'], additionalProperties: false };

describe("a name ending in another family's suffix", () => {
  let p: Pipeline;
  let env: Record<string, string>;
  beforeAll(async () => {
    p = await startPipeline({ file: import.meta.filename });
    env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, LOG_FORMAT: 'json' };
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('never ends in .report, whatever its case or trailing dots and spaces', () => {
    expect(baseNameOf('a.report.pdf')).toBe('a_report');
    expect(baseNameOf('a.REPORT. .pdf')).toBe('a_REPORT');
    expect(baseNameOf('a.report.x.pdf')).toBe('a.report.x');
    expect(baseNameOf('report.pdf')).toBe('report');
  });

  it('a.pdf and a.report.pdf under a JSON task on whole documents: each has its own X.json and X.report.json', async () => {
    const inputs = join(p.dir, 'in');
    mkdirSync(inputs);
    writeFileSync(join(inputs, 'a.pdf'), numberedPdf(1, 41));
    writeFileSync(join(inputs, 'a.report.pdf'), numberedPdf(1, 42));
    const schema = join(p.dir, 'S.json');
    writeFileSync(schema, JSON.stringify(SCHEMA));
    const r = await runCli(['enqueue', join(inputs, 'a.pdf'), join(inputs, 'a.report.pdf'), '--schema', schema, '--unit', 'document', '--wait', '--json'], env, { timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const runs = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { docId?: string; name?: string; files?: string[] })
      .filter((l) => l.files);
    expect(runs).toHaveLength(2);
    // Four files, none listed by both documents.
    expect(readdirSync(p.config.outDir)).toHaveLength(4);
    expect(new Set(runs.flatMap((run) => run.files)).size).toBe(4);
    for (const run of runs) {
      const name = run.files!.find((f) => f.endsWith('.report.json'))!.slice(p.config.outDir.length + 1, -'.report.json'.length);
      const report = JSON.parse(readFileSync(join(p.config.outDir, `${name}.report.json`), 'utf8')) as Record<string, unknown>;
      expect(report).toMatchObject({ document: run.docId, units: 1, completed: 1 });
      const data = JSON.parse(readFileSync(join(p.config.outDir, `${name}.json`), 'utf8')) as Record<string, unknown>;
      expect(Object.keys(data)).toEqual(['title']);
    }
  }, 90_000);
});
