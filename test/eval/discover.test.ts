/**
 * Finding outputs and their models on disk (folders written here): the model comes from the
 * reports, never the folder; a report naming none takes its folder's model; outputs are found by
 * file name beside the report (a moved OUT_DIR); X-<8 hex> answers to its source's name; hidden
 * folders are skipped; a broken report is a problem, not a crash. And the writer's
 * compareDocumentFiles on files.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_COMPARE } from '../../src/eval/compare.ts';
import { compareDocumentFiles, compareRun } from '../../src/eval/compare-run.ts';
import { DEFAULT_NORMALISE } from '../../src/eval/normalise.ts';
import { evaluate } from '../../src/eval/score.ts';
import { discoverOutputs, stemOf } from '../../src/eval/discover.ts';
import { readTruth } from '../../src/eval/truth.ts';
import { writeOutputs } from '../helpers/outputs.ts';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'docbatch-discover-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('discoverOutputs', () => {
  it('groups documents by the served model in their reports', () => {
    const out = join(root, 'run');
    writeOutputs(join(out, 'Qwen_Qwen2.5-VL'), [
      { name: 'a', models: ['Qwen/Qwen2.5-VL'], json: { x: 1 } },
      { name: 'b', models: [], failed: [{ unit: 0, code: 'ENGINE_OOM', message: 'oom' }] },
    ]);
    writeOutputs(join(out, 'mixed'), [
      { name: 'c', models: ['m1'], md: 'c' },
      { name: 'd', models: ['m2'], md: 'd' },
      { name: 'e', models: [] },
      // Every unit failed, but its run named its model: that model, whatever the folder holds.
      { name: 'e2', models: [], model: 'm2', failed: [{ unit: 0, code: 'OUTPUT_INVALID', message: 'not JSON' }] },
    ]);
    writeOutputs(out, [{ name: 'f', models: ['m2', 'm1'], md: 'f' }]);
    writeOutputs(join(out, '.hidden'), [{ name: 'g', models: ['m9'], md: 'g' }]);
    mkdirSync(join(out, 'broken'));
    writeFileSync(join(out, 'broken', 'h.report.json'), '{"models": [');

    const found = discoverOutputs(out);
    const by = Object.fromEntries(found.outputs.map((o) => [o.name, o.model]));
    expect(by).toEqual({
      a: 'Qwen/Qwen2.5-VL',
      b: 'Qwen/Qwen2.5-VL', // names no model: the one model of its folder
      c: 'm1',
      d: 'm2',
      e: '(unknown)', // names no model, and its folder has two
      e2: 'm2',
      f: 'm1 + m2',
    });
    expect(found.models).toEqual(['(unknown)', 'Qwen/Qwen2.5-VL', 'm1', 'm1 + m2', 'm2']);
    expect(found.folders).toEqual({ '(unknown)': ['mixed'], 'Qwen/Qwen2.5-VL': ['Qwen_Qwen2.5-VL'], m1: ['mixed'], 'm1 + m2': ['.'], m2: ['mixed'] });
    expect(found.problems.map((p) => p.describe())).toEqual([expect.stringMatching(/broken\/h\.report\.json: EVAL_BAD_OUTPUT: report is not readable JSON/)]);
  });

  it('two runs of one file under different tasks: compare pairs each with its own task, eval says both', () => {
    const out = join(root, 'two-tasks');
    writeOutputs(join(out, 'a'), [
      { name: 'inv1', models: ['a'], json: { vendor: 'Acme' }, taskHash: 'seed42aaaaaaaa' },
      // The same file again under another task (another seed): a suffixed name, the same source.
      { name: 'inv1-0a1b2c3d', source: '/inputs/inv1.pdf', models: ['a'], json: { vendor: 'Second Run' }, taskHash: 'seed77bbbbbbbb' },
    ]);
    writeOutputs(join(out, 'b'), [{ name: 'inv1', models: ['b'], json: { vendor: 'Acme' }, taskHash: 'seed42aaaaaaaa' }]);
    const found = discoverOutputs(out);
    const run = compareRun(found, { ...DEFAULT_COMPARE, tolerance: 0 } as Parameters<typeof compareRun>[1]);
    // The seed-42 runs agree; the seed-77 run has no partner (it was paired with b's seed-42 run).
    expect(run.documents).toBe(1);
    expect(run.agreeing_documents).toBe(1);
    expect(run.disagreements).toEqual([]);
    expect(run.only_in).toEqual([{ document: 'inv1 [task invoice seed77bb]', models: ['a'], missing: ['b'] }]);
    // eval scores the run named exactly inv1 and says the other answers to the same truth.
    const truthDir = join(root, 'two-tasks-truth');
    mkdirSync(truthDir, { recursive: true });
    writeFileSync(join(truthDir, 'inv1.json'), JSON.stringify({ vendor: 'Acme' }));
    const report = evaluate(readTruth(truthDir), found, { ...DEFAULT_NORMALISE } as Parameters<typeof evaluate>[2]);
    expect(report.problems.map((p) => p.message)).toEqual(expect.arrayContaining([expect.stringMatching(/2 outputs answer to truth "inv1".*inv1\.report\.json.*inv1-0a1b2c3d\.report\.json/)]));
  });

  it('finds outputs by file name beside the report, so a moved folder still works', () => {
    const out = join(root, 'moved');
    writeOutputs(out, [{ name: 'inv-1-0a1b2c3d', source: '/somewhere/else/inv-1.pdf', models: ['m'], json: { total: 1 } }]);
    // The report's outputs point to where the run wrote them, not here.
    const report = join(out, 'inv-1-0a1b2c3d.report.json');
    writeFileSync(report, JSON.stringify({ source: '/somewhere/else/inv-1.pdf', models: ['m'], outputs: ['/old/place/inv-1-0a1b2c3d.json', '/old/place/inv-1-0a1b2c3d.report.json'] }));
    const [o] = discoverOutputs(out).outputs;
    expect(o).toMatchObject({ key: 'inv-1', name: 'inv-1-0a1b2c3d', files: { json: join(out, 'inv-1-0a1b2c3d.json') } });
  });

  it('a name with a suffix that is not the source base name keeps its own key', () => {
    const out = join(root, 'names');
    writeOutputs(out, [
      { name: 'report-2024', source: '/in/report-2024.pdf', models: ['m'], md: 'x' },
      { name: 'scan-deadbeef', source: '/in/other.pdf', models: ['m'], md: 'x' },
    ]);
    expect(discoverOutputs(out).outputs.map((o) => o.key)).toEqual(['report-2024', 'scan-deadbeef']);
  });

  it('stemOf drops only the last extension', () => {
    expect(stemOf('/a/b/report.final.pdf')).toBe('report.final');
    expect(stemOf('notes')).toBe('notes');
    expect(stemOf('.hidden')).toBe('.hidden');
  });
});

describe('readTruth', () => {
  it('reads X.json objects and X.md texts, skips reports, and tolerates a byte-order mark', () => {
    const dir = join(root, 'truth');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.json'), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"x": 1}')]));
    writeFileSync(join(dir, 'b.md'), '<!-- page 1 -->\nhi\n');
    writeFileSync(join(dir, 'a.report.json'), '{}');
    writeFileSync(join(dir, 'notes.txt'), 'not truth');
    writeFileSync(join(dir, 'c.json'), '\ufeff{"x": }');
    const t = readTruth(dir);
    expect(t.truths.map((x) => [x.key, x.fields ?? x.text?.pages])).toEqual([
      ['a', { x: 1 }],
      ['b', [{ page: 1, text: 'hi\n' }]],
    ]);
    // The offset counts the byte-order mark's three bytes.
    expect(t.problems.map((p) => p.describe())).toEqual([expect.stringMatching(/c\.json: line 1: byte 9: EVAL_BAD_TRUTH: not valid JSON at column 7/)]);
  });
});

describe('compareDocumentFiles', () => {
  it('compares output files; an absent file is a missing model', () => {
    const dir = join(root, 'cmp');
    writeOutputs(join(dir, 'a'), [{ name: 'x', models: ['A'], json: { total: '1,234.50', date: '2024-03-05' } }]);
    writeOutputs(join(dir, 'b'), [{ name: 'x', models: ['B'], json: { total: 1234.5, date: '2024-03-06' } }]);
    const c = compareDocumentFiles('x', [
      { model: 'A', path: join(dir, 'a', 'x.json') },
      { model: 'B', path: join(dir, 'b', 'x.json') },
      { model: 'C', path: join(dir, 'c', 'x.json') },
      { model: 'D', path: null },
    ]);
    expect(c).toMatchObject({ models: ['A', 'B'], missing: ['C', 'D'], fields: 2, agreeing_fields: 1, disagreements: [{ path: 'date', values: { A: '2024-03-05', B: '2024-03-06' } }] });
  });
});

describe('discoverOutputs through symbolic links', () => {
  it('follows a model folder linked in from another run, once, and survives a link back to its parent', () => {
    const runs = join(root, 'linked');
    writeOutputs(join(runs, 'run-1', 'model-a'), [{ name: 'x', models: ['A'], json: { total: 1 } }]);
    writeOutputs(join(runs, 'compare', 'model-b'), [{ name: 'x', models: ['B'], json: { total: 2 } }]);
    // OUT_DIR assembled by hand from two runs: model-a is a link to the first run's folder.
    symlinkSync(join(runs, 'run-1', 'model-a'), join(runs, 'compare', 'model-a'));
    symlinkSync(join(runs, 'compare'), join(runs, 'compare', 'model-b', 'loop'));
    symlinkSync(join(runs, 'nowhere'), join(runs, 'compare', 'dangling'));
    const found = discoverOutputs(join(runs, 'compare'));
    expect(found.outputs.map((o) => [o.model, o.name])).toEqual([
      ['A', 'x'],
      ['B', 'x'],
    ]);
    expect(found.folders).toEqual({ A: ['model-a'], B: ['model-b'] });
    expect(found.problems).toEqual([]);
  });
});

describe('discoverOutputs past links that lead nowhere', () => {
  it('a link to itself or a ring of links (ELOOP) is passed over, not a crash', () => {
    const out = join(root, 'loops');
    writeOutputs(join(out, 'model-a'), [{ name: 'x', models: ['A'], json: { total: 1 } }]);
    // `ln -s self self`: following it never ends (ELOOP), as a link made by mistake in OUT_DIR does.
    symlinkSync('self', join(out, 'self'));
    symlinkSync('ping', join(out, 'pong'));
    symlinkSync('pong', join(out, 'ping'));
    const found = discoverOutputs(out);
    expect(found.outputs.map((o) => [o.model, o.name])).toEqual([['A', 'x']]);
  });
});
