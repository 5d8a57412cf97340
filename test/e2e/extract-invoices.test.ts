/**
 * Structured extraction end to end (issue 9, "Done when"): 40 generated invoices (one or two
 * pages, seven fields spread over the pages) go through the real CLI with `--schema S.json
 * --prompt "..." --unit document` while the engine cuts off 30% of the answers it sees first.
 * Every `X.json` equals its truth, the cut-off answers were asked again (counted in the reports
 * exactly as often as the engine cut one off), and none was kept.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { INVOICE_SCHEMA, makeInvoices, type GeneratedInvoice } from '../helpers/invoices.ts';
import { startPipeline, type Pipeline } from '../helpers/pipeline.ts';

const PROMPT = 'Extract the invoice number, both dates, vendor, customer, currency and total amount of this invoice.';

describe('structured extraction of 40 invoices while the engine cuts off 30% of first answers', () => {
  let p: Pipeline;
  let env: Record<string, string>;
  let invoices: GeneratedInvoice[];
  let schemaFile: string;

  beforeAll(async () => {
    // max_tokens 300: a whole answer takes about 90 tokens, a cut-off one runs to the 300.
    p = await startPipeline({ file: import.meta.filename, emulator: { cutoff: 0.3 }, config: { pageMaxTokens: 300, imageSize: 640 } });
    env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, LOG_FORMAT: 'json' };
    invoices = makeInvoices(join(p.dir, 'invoices'), 40, 9);
    schemaFile = join(p.dir, 'S.json');
    writeFileSync(schemaFile, JSON.stringify(INVOICE_SCHEMA, null, 2));
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('the generator spreads the fields over one or two pages', () => {
    const twoPages = invoices.filter((i) => i.pages === 2).length;
    expect(twoPages).toBeGreaterThan(5);
    expect(twoPages).toBeLessThan(35);
  });

  it('gives 40 X.json equal to their truth; every cut-off answer was asked again and none kept', async () => {
    const r = await runCli(
      ['enqueue', join(p.dir, 'invoices'), '--glob', '*.pdf', '--schema', schemaFile, '--prompt', PROMPT, '--unit', 'document', '--wait', '--json'],
      env,
      { timeoutMs: 280_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const enqueued = lines.filter((l) => l.outcome === 'enqueued');
    expect(enqueued).toHaveLength(40);
    expect(enqueued.every((l) => l.task === 'extract' && l.unit === 'document' && l.units === 1)).toBe(true);
    // --glob kept the truth folder's JSON files out (not even listed as skipped).
    expect(lines.filter((l) => l.skipped !== undefined)).toHaveLength(0);

    // The cut-off answers the engine gave, by document (the worker's start-up image probe aside).
    const cutOff = new Map<string, number>();
    for (const a of p.engine.answers()) {
      const docId = /^chatcmpl-(d[0-9a-f]{20})-/.exec(a.id)?.[1];
      if (docId && a.flaw) {
        expect(a.flaw).toBe('cutoff');
        cutOff.set(docId, (cutOff.get(docId) ?? 0) + 1);
      }
    }
    expect([...cutOff.values()].reduce((s, n) => s + n, 0)).toBeGreaterThanOrEqual(4); // 30% of 40 contents, picked by hash
    const docIds = new Map(enqueued.map((l) => [l.name as string, l.docId as string]));
    for (const inv of invoices) {
      const got = JSON.parse(readFileSync(join(p.config.outDir, `${inv.name}.json`), 'utf8')) as unknown;
      expect(got, inv.name).toEqual(inv.truth);
      // The fields come in the schema's order (the task keeps the user's order; only its hash is canonical).
      expect(Object.keys(got as object)).toEqual(Object.keys(INVOICE_SCHEMA.properties));
      const report = JSON.parse(readFileSync(join(p.config.outDir, `${inv.name}.report.json`), 'utf8')) as Record<string, unknown>;
      expect(report).toMatchObject({ units: 1, completed: 1, failed: [], task: { name: 'extract', unit: 'document', output: 'json' }, fallbacks: { count: 0 } });
      // Each cut-off answer was rejected and asked again: the report counts exactly those.
      const expected = cutOff.get(docIds.get(inv.name)!);
      expect(report.retries, inv.name).toEqual(expected ? { OUTPUT_TRUNCATED: expected } : {});
    }
  }, 300_000);
});
