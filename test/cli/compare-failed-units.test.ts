/**
 * `docbatch compare` on runs whose units failed: a page or chunk that failed has no answer, and
 * two models that both have no answer do not agree on it. Three models, written here in the
 * writer's layout: per-page JSON (X.jsonl with `error` lines), chat summaries (X.jsonl by
 * conversation and chunk), and a document that only two of the three models produced.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { writeOutputs } from '../helpers/outputs.ts';

const env = { LOG_FORMAT: 'json' };
const down = { code: 'ENGINE_DOWN', message: 'engine unreachable' };

let root: string;
let out: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'docbatch-compare-failed-'));
  out = join(root, 'run');
  for (const m of ['A', 'B', 'C']) {
    const chatLine = (chunk: number, summary: string) =>
      m === 'C' && chunk === 1 ? { conversation_id: 'c1', chunk, summary: null, error: down } : { conversation_id: 'c1', chunk, summary };
    writeOutputs(join(out, m.toLowerCase()), [
      // Page 2 failed in every model: nothing to compare there, and nothing agreed on either.
      { name: 'pages', models: [m], jsonl: [{ page: 1, data: { total: 5 } }, { page: 2, error: down }], failed: [{ unit: 1, page: 2, ...down }] },
      // Every unit failed in every model.
      { name: 'dead', models: [m], jsonl: [{ page: 1, error: down }], failed: [{ unit: 0, page: 1, ...down }] },
      // C lost the second of forty chunks; the rest reads the same in all three.
      { name: 'chat', models: [m], jsonl: Array.from({ length: 40 }, (_, i) => chatLine(i, `Summary of chunk number ${i}.`)) },
      ...(m === 'C' ? [] : [{ name: 'two', models: [m], json: { total: 1 } }]),
    ]);
  }
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('docbatch compare with failed units', () => {
  it('a unit that failed in any model is not agreement', async () => {
    const r = await runCli(['compare', out, '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const run = JSON.parse(r.stdout);
    expect(run).toMatchObject({ models: ['A', 'B', 'C'], documents: 4, agreeing_documents: 1 });
    const by = Object.fromEntries(run.disagreements.map((d: { document: string }) => [d.document, d]));
    expect(Object.keys(by)).toEqual(['chat', 'dead', 'pages']);
    expect(by.pages.failed_units).toEqual({ A: ['2'], B: ['2'], C: ['2'] });
    expect(by.dead.failed_units).toEqual({ A: ['1'], B: ['1'], C: ['1'] });
    expect(by.chat.failed_units).toEqual({ C: ['c1#1'] });
    // The chat's texts are still measured (39 of 40 chunks), and C is named as failed.
    expect(by.chat.pages).toHaveLength(1);
    expect(by.chat.pages[0]).toMatchObject({ page: null, agree: false, failed: ['C'] });
    expect(by.chat.pages[0].similarity).toBeGreaterThan(0.95);
    expect(run.only_in).toEqual([{ document: 'two', models: ['A', 'B'], missing: ['C'] }]);

    const text = await runCli(['compare', out], env);
    expect(text.stdout).toContain('documents compared: 4 (1 agree on everything, 3 disagree)\n');
    expect(text.stdout).toContain('  pages: failed units: A: 2; B: 2; C: 2\n');
    expect(text.stdout).toContain('  chat: failed units: C: c1#1\n');
  });
});
