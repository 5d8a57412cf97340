/**
 * `docbatch eval` as a user runs it, on output folders written here in the writer's layout: two
 * model folders (named unlike their served names), fields wrong, outputs missing in two ways, a
 * de-duplicated output name, a text document with page markers; the exact figures in JSON and in
 * the table, every bad argument with its code and exit 2; and 40 generated invoices where one
 * model is right in its own formats and the other has a known share of wrong fields.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { invoices, rewritten, rng, withErrors } from '../helpers/invoices.ts';
import { writeOutputs } from '../helpers/outputs.ts';

const A = 'acme/model-a';
const B = 'acme/model-b';
const env = { LOG_FORMAT: 'json' };

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'docbatch-eval-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Truth: three invoices (16 fields) and a three-page text (81 characters, 17 words). */
function writeTruth(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const truth = {
    'inv-1': { number: 'INV-1', date: '2024-03-05', total: 1234.5, vendor: { name: 'Acme Corp' }, items: [{ amount: 1000 }, { amount: 234.5 }] },
    'inv-2': { number: 'INV-2', date: '2024-04-01', total: 99, vendor: { name: 'Globex' }, items: [{ amount: 99 }] },
    'inv-3': { number: 'INV-3', date: '2024-05-20', total: 10, vendor: { name: 'Initech' }, items: [{ amount: 10 }] },
  };
  for (const [name, value] of Object.entries(truth)) writeFileSync(join(dir, `${name}.json`), JSON.stringify(value));
  writeFileSync(join(dir, 'book.md'), '<!-- page 1 -->\nThe quick brown fox\n<!-- page 2 -->\njumps over the lazy dog\n<!-- page 3 -->\nPack my box with five dozen liquor jugs\n');
}

function writeRun(out: string): void {
  writeOutputs(join(out, 'acme_model-a'), [
    { name: 'inv-1', models: [A], json: { number: 'inv-1', date: 'March 5, 2024', total: '1,234.50', vendor: { name: ' acme  corp ' }, items: [{ amount: '$1,000.00' }, { amount: 234.5 }] } },
    { name: 'inv-2', models: [A], json: { number: 'INV-2', date: '01.04.2024', total: 99, vendor: { name: 'Globex' }, items: [{ amount: 99 }], extra: 'not scored' } },
    // Two inputs were named inv-3: this one's output is inv-3-<8 hex>; its source names it.
    { name: 'inv-3-1a2b3c4d', source: '/in/b/inv-3.pdf', models: [A], json: { number: 'INV-3', date: '2024-05-20', total: 10, vendor: { name: 'Initech' }, items: [{ amount: 10 }] } },
    { name: 'book', models: [A], md: '<!-- page 1 -->\nThe quick brown fox\n<!-- page 2 -->\njumps ovr the lazy dog\n<!-- page 3 -->\nPack my box with five dozen liquor jugs\n' },
    { name: 'notes', models: [A], md: 'no truth for this one' },
  ]);
  writeOutputs(join(out, 'acme_model-b'), [
    { name: 'inv-1', models: [B], json: { number: 'INV-1', date: '2024-03-05', total: 1243.5, vendor: { name: 'Acme' }, items: [{ amount: 1000 }, { amount: 234.5 }] } },
    // Every unit failed: no output, and a report that names no model (its folder's model is B).
    { name: 'inv-2', models: [], failed: [{ unit: 0, code: 'ENGINE_OOM', message: 'CUDA out of memory' }] },
    // inv-3: no report at all.
    { name: 'book', models: [B], md: '<!-- page 1 -->\nThe quick brown fox\n<!-- page 2 failed: ENGINE_OOM: CUDA out of memory -->\n<!-- page 3 -->\nPack my box with five dozen liquor jugs\n<!-- page 4 -->\nan extra page\n' },
  ]);
}

describe('docbatch eval on two models', () => {
  let out: string;
  let truth: string;
  beforeAll(() => {
    out = join(root, 'run');
    truth = join(root, 'truth');
    writeRun(out);
    writeTruth(truth);
  });

  it('scores each served model: exact figures, per field, per document, missing outputs listed', async () => {
    const r = await runCli(['eval', out, '--truth', truth, '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(Object.keys(report.models)).toEqual([A, B]);
    const a = report.models[A];
    const b = report.models[B];
    expect(a).toMatchObject({ documents: 4, missing_outputs: 0, fields: 16, correct_fields: 16, field_accuracy: 1, chars: 81, char_edits: 1, words: 17, word_edits: 1, pages: 3, folders: ['acme_model-a'] });
    expect(a.cer).toBe(Math.round((1 / 81) * 1e6) / 1e6);
    expect(a.wer).toBe(Math.round((1 / 17) * 1e6) / 1e6);
    expect(a.unscored_outputs).toEqual(['acme_model-a/notes.report.json']);
    expect(a.per_document.find((d: { document: string }) => d.document === 'inv-3')).toMatchObject({ status: 'scored', output: 'acme_model-a/inv-3-1a2b3c4d.json', fields: 5, correct_fields: 5 });

    // B: inv-1 4 of 6 right, inv-2 and inv-3 missing (10 wrong): 4 of 16.
    expect(b).toMatchObject({ documents: 4, missing_outputs: 2, fields: 16, correct_fields: 4, field_accuracy: 0.25, chars: 81, char_edits: 23, words: 17, word_edits: 5, folders: ['acme_model-b'] });
    expect(b.cer).toBe(Math.round((23 / 81) * 1e6) / 1e6);
    expect(b.wer).toBe(Math.round((5 / 17) * 1e6) / 1e6);
    expect(b.per_field).toEqual({
      date: { fields: 3, correct: 1, accuracy: 0.333333 },
      'items[].amount': { fields: 4, correct: 2, accuracy: 0.5 },
      number: { fields: 3, correct: 1, accuracy: 0.333333 },
      total: { fields: 3, correct: 0, accuracy: 0 },
      'vendor.name': { fields: 3, correct: 0, accuracy: 0 },
    });
    const inv1 = b.per_document.find((d: { document: string }) => d.document === 'inv-1');
    expect(inv1.wrong).toEqual([
      { path: 'total', expected: 1234.5, got: 1243.5, reason: 'differs' },
      { path: 'vendor.name', expected: 'Acme Corp', got: 'Acme', reason: 'differs' },
    ]);
    expect(b.missing).toEqual([
      { document: 'inv-2', truth: 'inv-2.json', reason: expect.stringMatching(/^no inv-2\.json or \.jsonl output; the report lists 1 failed unit\(s\), first ENGINE_OOM: CUDA out of memory$/) },
      { document: 'inv-3', truth: 'inv-3.json', reason: 'no report of this name' },
    ]);
    const book = b.per_document.find((d: { document: string }) => d.document === 'book');
    expect(book.pages.map((p: { page: number; status: string; char_edits: number }) => [p.page, p.status, p.char_edits])).toEqual([
      [1, 'scored', 0],
      [2, 'failed', 23],
      [3, 'scored', 0],
    ]);
    expect(book.unscored_pages).toEqual([4]);
  });

  it('prints a table per model for people', async () => {
    const r = await runCli(['eval', out, '--truth', truth], env);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^model\s+documents\s+missing\s+fields\s+field accuracy\s+CER\s+WER\s+pages$/);
    expect(lines[1]).toMatch(/^acme\/model-a\s+4\s+0\s+16\s+100\.00%\s+1\.23%\s+5\.88%\s+3$/);
    expect(lines[2]).toMatch(/^acme\/model-b\s+4\s+2\s+16\s+25\.00%\s+28\.40%\s+29\.41%\s+3$/);
    expect(r.stdout).toContain('inv-1: total: expected 1234.5, got 1243.5');
    expect(r.stdout).toMatch(/missing:\n\s+inv-2 \(no inv-2\.json/);
    // A's notes.md has no truth: said, as a count (a run of thousands has a sample of truth).
    expect(r.stdout).toContain('  not scored: 1 output without a truth file (--json lists it)\n');
    expect(r.stdout.match(/not scored/g)).toHaveLength(1);
  });

  it('--model scores one model; --tolerance and --case-sensitive change the verdicts', async () => {
    const one = JSON.parse((await runCli(['eval', out, '--truth', truth, '--json', '--model', B], env)).stdout);
    expect(Object.keys(one.models)).toEqual([B]);
    const tolerant = JSON.parse((await runCli(['eval', out, '--truth', truth, '--json', '--tolerance', '10'], env)).stdout);
    expect(tolerant.models[B]).toMatchObject({ correct_fields: 5, field_accuracy: 0.3125 });
    expect(tolerant.tolerance).toBe(10);
    const strict = JSON.parse((await runCli(['eval', out, '--truth', truth, '--json', '--case-sensitive'], env)).stdout);
    // A wrote "inv-1" and " acme  corp ": wrong with case, right without.
    expect(strict.models[A]).toMatchObject({ correct_fields: 14 });
  });

  it('a bad truth file is named with its place and exit 2; the rest is still scored', async () => {
    const t2 = join(root, 'truth-bad');
    writeTruth(t2);
    writeFileSync(join(t2, 'broken.json'), '{"total": 12,\n "date": }');
    writeFileSync(join(t2, 'list.json'), '[1, 2]');
    writeFileSync(join(t2, 'latin1.md'), Buffer.from([0x61, 0x62, 0xe9, 0x63]));
    // Saved by a Windows editor: a byte-order mark, CRLF, a trailing comma on line 3.
    writeFileSync(join(t2, 'trailing.json'), '\ufeff{\r\n  "total": 12,\r\n  "café": "x",\r\n}\r\n');
    // JSON.parse would keep the second "total" and drop the first without a word.
    writeFileSync(join(t2, 'twice.json'), '{\n  "total": 12,\n  "total": 13\n}\n');
    const r = await runCli(['eval', out, '--truth', t2, '--json'], env);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^docbatch: .*\/broken\.json: line 2: byte 23: EVAL_BAD_TRUTH: not valid JSON at column 10: .*"}"/);
    expect(lines[1]).toMatch(/latin1\.md: byte 2: EVAL_BAD_TRUTH: not valid UTF-8$/);
    expect(lines[2]).toMatch(/list\.json: byte 0: EVAL_BAD_TRUTH: must be a JSON object \(the fields to score\), not an array$/);
    // "}" is on line 4, column 1; bytes before it: 3 (BOM) + 3 + 16 + 17 (é is two bytes) = 39.
    expect(lines[3]).toMatch(/trailing\.json: line 4: byte 39: EVAL_BAD_TRUTH: not valid JSON at column 1: expected a property name in double quotes, found "}"$/);
    expect(lines[4]).toMatch(/twice\.json: line 3: EVAL_BAD_TRUTH: the key "total" is written twice in one object \(JSON would keep only the last\)$/);
    const report = JSON.parse(r.stdout);
    expect(report.models[A]).toMatchObject({ documents: 4, fields: 16 });
    expect(report.problems.map((p: { code: string }) => p.code)).toEqual(['EVAL_BAD_TRUTH', 'EVAL_BAD_TRUTH', 'EVAL_BAD_TRUTH', 'EVAL_BAD_TRUTH', 'EVAL_BAD_TRUTH']);
  });

  it('bad arguments exit 2 and say why in one line', async () => {
    const empty = join(root, 'empty');
    mkdirSync(empty, { recursive: true });
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    const cases: Array<[string[], RegExp]> = [
      [['eval', join(root, 'nope'), '--truth', truth], /nope: EVAL_NOT_A_DIR: the output folder does not exist$/],
      [['eval', out, '--truth', join(root, 'nope')], /nope: EVAL_NOT_A_DIR: the --truth folder does not exist$/],
      [['eval', file, '--truth', truth], /a-file: EVAL_NOT_A_DIR: the output folder is not a folder$/],
      [['eval', empty, '--truth', truth], /empty: EVAL_NO_OUTPUTS: no X\.report\.json found/],
      [['eval', out, '--truth', empty], /empty: EVAL_NO_TRUTH: no truth file \(X\.json or X\.md\) to score against$/],
      [['eval', out, '--truth', truth, '--model', 'model-c'], /EVAL_NO_OUTPUTS: no outputs from model "model-c"; found: "acme\/model-a", "acme\/model-b"$/],
      [['eval', out, '--truth', truth, '--tolerance', 'abc'], /--tolerance must be a number ≥ 0, not "abc"/],
      [['eval', out, '--truth', truth, '--tolerance', '-1'], /--tolerance must be a number ≥ 0, not "-1"/],
      [['eval', out, '--truth', truth, '--tolerance', '0x10'], /--tolerance must be a number ≥ 0, not "0x10"/],
      [['eval', out], /required option '--truth <dir>' not specified/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args, env);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.split('\n')[0], args.join(' ')).toMatch(message);
      expect(r.stdout, args.join(' ')).toBe('');
    }
  });
});

describe('40 generated invoices through two models', () => {
  it('scores the right model at 1 and the other at exactly the share it got right; missing outputs count as wrong', async () => {
    const out = join(root, 'invoices-run');
    const truth = join(root, 'invoices-truth');
    mkdirSync(truth, { recursive: true });
    const all = invoices(40, 10);
    const rand = rng(99);
    const aDocs = [];
    const bDocs = [];
    let fields = 0;
    let wrong = 0;
    const injected: string[] = [];
    for (const [i, inv] of all.entries()) {
      const name = `invoice-${String(i + 1).padStart(2, '0')}`;
      writeFileSync(join(truth, `${name}.json`), JSON.stringify(inv, null, 2));
      const n = Object.keys(flat(inv)).length;
      fields += n;
      aDocs.push({ name, models: ['model-a'], json: rewritten(inv, rand) });
      if (i === 16) {
        wrong += n; // no report at all
        continue;
      }
      if (i === 22) {
        wrong += n;
        bDocs.push({ name, models: ['model-b'], failed: [{ unit: 0, code: 'BAD_REQUEST', message: 'schema violated' }] });
        continue;
      }
      const e = withErrors(inv, rand, i % 4);
      wrong += e.wrong.length;
      injected.push(...e.wrong.map((p) => `${name}: ${p}`));
      bDocs.push({ name, models: ['model-b'], json: e.output });
    }
    writeOutputs(join(out, 'model-a'), aDocs);
    writeOutputs(join(out, 'model-b'), bDocs);
    const share = (fields - wrong) / fields;
    expect(share).toBeLessThan(0.95); // the errors are there to be found
    expect(injected.length).toBeGreaterThan(40);

    const r = await runCli(['eval', out, '--truth', truth, '--json'], env);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.models['model-a'].field_accuracy).toBeGreaterThanOrEqual(0.99);
    expect(report.models['model-a']).toMatchObject({ documents: 40, fields, correct_fields: fields });
    const b = report.models['model-b'];
    expect(Math.abs(b.field_accuracy - share)).toBeLessThanOrEqual(0.02);
    expect(b).toMatchObject({ documents: 40, fields, correct_fields: fields - wrong, missing_outputs: 2 });
    expect(b.missing.map((m: { document: string }) => m.document)).toEqual(['invoice-17', 'invoice-23']);
    const found = b.per_document.flatMap((d: { document: string; wrong?: Array<{ path: string }> }) => (d.wrong ?? []).map((w) => `${d.document}: ${w.path}`));
    expect(found.sort()).toEqual([...injected].sort());

    // The comparison finds exactly the fields where B went wrong (A is right everywhere).
    const c = await runCli(['compare', out, '--json'], env);
    expect(c.code).toBe(0);
    const run = JSON.parse(c.stdout);
    const disagree = run.disagreements.flatMap((d: { document: string; fields: Array<{ path: string }> }) => d.fields.map((f) => `${d.document}: ${f.path}`));
    expect(disagree.sort()).toEqual([...injected].sort());
    expect(run.documents).toBe(38);
    expect(run.only_in).toEqual([
      { document: 'invoice-17', models: ['model-a'], missing: ['model-b'] },
      { document: 'invoice-23', models: ['model-a'], missing: ['model-b'] },
    ]);
  });
});

function flat(v: unknown, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) flat(x, `${prefix}/${k}`, out);
  else out[prefix] = v;
  return out;
}
