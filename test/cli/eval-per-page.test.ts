/**
 * `docbatch eval` on per-page outputs (X.jsonl of a JSON task with unit page): truth keyed by page
 * (`{"1": {...}, "2": {...}}`). per_field keeps one row per page and field (`1.total`, ...);
 * per_field_across_units gives each field over every page, and the table shows that one: a
 * 200-page statement is scored per field, not in 200 rows a field.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { writeOutputs } from '../helpers/outputs.ts';

const env = { LOG_FORMAT: 'json' };
const root = mkdtempSync(join(tmpdir(), 'docbatch-eval-pages-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it('scores per-page fields per field over every page, and still per page in per_field', async () => {
  const truth = join(root, 'truth');
  mkdirSync(truth, { recursive: true });
  const pages = 30;
  const want: Record<string, { total: number; lines: Array<{ amount: number }> }> = {};
  for (let p = 1; p <= pages; p++) want[String(p)] = { total: p * 10, lines: [{ amount: p }, { amount: p * 9 }] };
  writeFileSync(join(truth, 'statement.json'), JSON.stringify(want));
  // The model gets every 5th page's total wrong and page 7's second line; page 30 failed.
  const lines = Object.entries(want).map(([p, v]) => {
    const page = Number(p);
    if (page === 30) return { page, error: { code: 'ENGINE_OOM', message: 'CUDA out of memory' } };
    return { page, data: { total: page % 5 === 0 ? v.total + 1 : v.total, lines: [{ amount: page }, { amount: page === 7 ? 0 : page * 9 }] } };
  });
  writeOutputs(join(root, 'out'), [{ name: 'statement', models: ['m'], jsonl: lines }]);

  const json = await runCli(['eval', join(root, 'out'), '--truth', truth, '--json'], env);
  expect(json.code, json.stderr).toBe(0);
  const m = JSON.parse(json.stdout).models.m;
  expect(m.fields).toBe(90);
  // total: 30 pages, 6 wrong (5, 10, 15, 20, 25 and the failed 30); lines[].amount: 60, page 7's and page 30's two wrong.
  expect(m.per_field_across_units).toEqual({
    total: { fields: 30, correct: 24, accuracy: 0.8 },
    'lines[].amount': { fields: 60, correct: 57, accuracy: 0.95 },
  });
  expect(Object.keys(m.per_field)).toHaveLength(60);
  expect(m.per_field['5.total']).toEqual({ fields: 1, correct: 0, accuracy: 0 });

  const text = await runCli(['eval', join(root, 'out'), '--truth', truth], env);
  expect(text.code, text.stderr).toBe(0);
  expect(text.stdout).toMatch(/field \(all pages and chunks\)\s+fields\s+correct\s+accuracy/);
  expect(text.stdout).toMatch(/^\s+total\s+30\s+24\s+80(\.0+)?\s?%/m);
  expect(text.stdout).not.toMatch(/^\s+5\.total/m);
});

it('whole-document truth: per_field_across_units is per_field', async () => {
  const truth = join(root, 'truth2');
  mkdirSync(truth, { recursive: true });
  writeFileSync(join(truth, 'inv.json'), JSON.stringify({ total: 5, items: [{ amount: 5 }] }));
  writeOutputs(join(root, 'out2'), [{ name: 'inv', models: ['m'], json: { total: 5, items: [{ amount: 4 }] } }]);
  const json = await runCli(['eval', join(root, 'out2'), '--truth', truth, '--json'], env);
  const m = JSON.parse(json.stdout).models.m;
  expect(m.per_field_across_units).toEqual(m.per_field);
  expect(Object.keys(m.per_field)).toEqual(['items[].amount', 'total']);
});
