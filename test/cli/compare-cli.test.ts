/**
 * `docbatch compare` as a user runs it, on a two-model output folder written here: agreement per
 * field (X.json and page-unit X.jsonl) and per page (X.md), the threshold, documents only one model
 * has, the exact figures in JSON and in text, and exit 2 on bad arguments.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { writeOutputs } from '../helpers/outputs.ts';

const A = 'org/A';
const B = 'org/B';
const env = { LOG_FORMAT: 'json' };

let root: string;
let out: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'docbatch-compare-'));
  out = join(root, 'run');
  const book = (page2: string) => `<!-- page 1 -->\nThe quick brown fox\n<!-- page 2 -->\n${page2}\n`;
  writeOutputs(join(out, 'a'), [
    { name: 'inv-1', models: [A], json: { total: '1,234.50', date: 'March 5, 2024', name: 'Acme' } },
    { name: 'inv-2', models: [A], json: { total: 5 } },
    { name: 'inv-3', models: [A], json: { total: 7 } },
    { name: 'book', models: [A], md: book('jumps over the lazy dog') },
    { name: 'pages', models: [A], jsonl: [{ page: 1, data: { a: 1 } }, { page: 2, data: { a: 2 } }] },
  ]);
  writeOutputs(join(out, 'b'), [
    { name: 'inv-1', models: [B], json: { total: 1234.5, date: '2024-03-06', name: 'ACME' } },
    { name: 'inv-2', models: [B], json: { total: '5.00' } },
    { name: 'book', models: [B], md: book('jumps ovr the lazy dog') },
    { name: 'pages', models: [B], jsonl: [{ page: 1, data: { a: 1 } }, { page: 2, error: { code: 'ENGINE_OOM', message: 'oom' } }] },
  ]);
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('docbatch compare', () => {
  it('gives agreement per field and per page and lists where the models disagree', async () => {
    const r = await runCli(['compare', out, '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const run = JSON.parse(r.stdout);
    expect(run).toMatchObject({
      models: [A, B],
      threshold: 0.95,
      documents: 4,
      agreeing_documents: 2,
      fields: 6,
      agreeing_fields: 4,
      field_agreement: 0.666667,
      pages: 2,
      agreeing_pages: 2,
      page_agreement: 1,
      mean_page_similarity: Math.round(((1 + (1 - 1 / 23)) / 2) * 1e6) / 1e6,
    });
    expect(run.per_field).toEqual({
      '1.a': { compared: 1, agreeing: 1, agreement: 1 },
      '2.a': { compared: 1, agreeing: 0, agreement: 0 },
      date: { compared: 1, agreeing: 0, agreement: 0 },
      name: { compared: 1, agreeing: 1, agreement: 1 },
      total: { compared: 2, agreeing: 2, agreement: 1 },
    });
    expect(run.disagreements).toEqual([
      { document: 'inv-1', outputs: { [A]: 'a/inv-1.json', [B]: 'b/inv-1.json' }, fields: [{ path: 'date', field: 'date', values: { [A]: 'March 5, 2024', [B]: '2024-03-06' } }], pages: [], failed_units: {} },
      { document: 'pages', outputs: { [A]: 'a/pages.jsonl', [B]: 'b/pages.jsonl' }, fields: [{ path: '2.a', field: '2.a', values: { [A]: 2, [B]: null } }], pages: [], failed_units: { [B]: ['2'] } },
    ]);
    expect(run.only_in).toEqual([{ document: 'inv-3', models: [A], missing: [B] }]);
  });

  it('a page below --threshold disagrees', async () => {
    const run = JSON.parse((await runCli(['compare', out, '--json', '--threshold', '0.99'], env)).stdout);
    expect(run).toMatchObject({ threshold: 0.99, agreeing_pages: 1, page_agreement: 0.5, agreeing_documents: 1 });
    expect(run.disagreements.find((d: { document: string }) => d.document === 'book').pages).toEqual([
      { page: 2, similarity: Math.round((1 - 1 / 23) * 1e6) / 1e6, pairs: { [`${A} vs ${B}`]: Math.round((1 - 1 / 23) * 1e6) / 1e6 }, agree: false, failed: [] },
    ]);
  });

  it('prints a summary, the fields by agreement, and each disagreement', async () => {
    const r = await runCli(['compare', out], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('documents compared: 4 (2 agree on everything, 2 disagree)\n');
    expect(r.stdout).toContain('fields: 4 of 6 agree (66.67%)\n');
    expect(r.stdout).toContain('pages: 2 of 2 at similarity ≥ 0.95 (mean similarity 97.83%)\n');
    expect(r.stdout).toContain('  inv-1: date: org/A="March 5, 2024"  org/B="2024-03-06"\n');
    expect(r.stdout).toContain('  pages: 2.a: org/A=2  org/B=null\n');
    expect(r.stdout).toContain('  inv-3: in org/A; not in org/B\n');
    expect(r.stdout).toMatch(/field\s+compared\s+agree\s+agreement\n2\.a\s+1\s+0\s+0\.00%\ndate\s+1\s+0\s+0\.00%\n/);
  });

  it('bad arguments exit 2 and say why in one line', async () => {
    const empty = join(root, 'empty');
    mkdirSync(empty, { recursive: true });
    const cases: Array<[string[], RegExp]> = [
      [['compare', join(root, 'nope')], /nope: EVAL_NOT_A_DIR: the output folder does not exist$/],
      [['compare', empty], /empty: EVAL_NO_OUTPUTS: no X\.report\.json found/],
      [['compare', join(out, 'a')], /EVAL_NO_OUTPUTS: outputs of one model only \("org\/A"\); compare needs two or more$/],
      [['compare', out, '--threshold', '1.5'], /--threshold must be a number from 0 to 1, not "1\.5"/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args, env);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.split('\n')[0], args.join(' ')).toMatch(message);
      expect(r.stdout, args.join(' ')).toBe('');
    }
  });
});
