/**
 * `docbatch eval` with truth files named the way people name them by hand: in other capitals
 * than the input (the writer already treats names that differ only so as one, for filesystems
 * that ignore case), in Unicode NFD (macOS file names) where the output is NFC, with the input's
 * extension kept (`scan.pdf.json`), and with the extension in capitals (`.JSON`). Each finds its
 * output; an output named exactly like the truth still comes first.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { writeOutputs } from '../helpers/outputs.ts';

const A = 'Qwen/Qwen2.5-VL-7B-Instruct';
const env = { LOG_FORMAT: 'json' };

let root: string;
let out: string;
let truth: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'docbatch-eval-names-'));
  out = join(root, 'run');
  truth = join(root, 'truth');
  writeOutputs(join(out, 'batch-1', 'Qwen--Qwen2.5-VL-7B-Instruct'), [
    { name: 'Invoice-01', source: '/in/Invoice-01.pdf', models: [A], json: { total: 1 } },
    { name: 'caf\u00e9', source: '/in/caf\u00e9.pdf', models: [A], json: { total: 2 } },
    { name: 'scan', source: '/in/scan.PDF', models: [A], json: { total: 3 } },
    { name: 'other', models: [A], json: { total: 4 } },
    // Named exactly like the truth "Mixed", and another of the same name in other capitals.
    { name: 'Mixed', models: [A], json: { total: 5 } },
    { name: 'mixed-1a2b3c4d', source: '/in/b/mixed.pdf', models: [A], json: { total: 6 } },
    { name: 'untouched', models: [A], json: { total: 7 } },
  ]);
  mkdirSync(truth, { recursive: true });
  writeFileSync(join(truth, 'invoice-01.json'), '{"total": 1}');
  writeFileSync(join(truth, 'cafe\u0301.json'), '{"total": 2}');
  writeFileSync(join(truth, 'scan.pdf.json'), '{"total": 3}');
  writeFileSync(join(truth, 'other.JSON'), '{"total": 4}');
  writeFileSync(join(truth, 'Mixed.json'), '{"total": 5}');
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('truth names written by hand', () => {
  it('each truth finds its output; nothing is missing', async () => {
    const r = await runCli(['eval', out, '--truth', truth, '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const a = JSON.parse(r.stdout).models[A];
    expect(a).toMatchObject({ documents: 5, missing_outputs: 0, fields: 5, correct_fields: 5, missing: [] });
    const outputs = Object.fromEntries(a.per_document.map((d: { truth: string; output: string }) => [d.truth, d.output]));
    const dir = 'batch-1/Qwen--Qwen2.5-VL-7B-Instruct';
    expect(outputs).toEqual({
      'invoice-01.json': `${dir}/Invoice-01.json`,
      'cafe\u0301.json': `${dir}/caf\u00e9.json`,
      'scan.pdf.json': `${dir}/scan.json`,
      'other.JSON': `${dir}/other.json`,
      'Mixed.json': `${dir}/Mixed.json`,
    });
    expect(a.unscored_outputs).toEqual([`${dir}/mixed-1a2b3c4d.report.json`, `${dir}/untouched.report.json`]);
  });
});
