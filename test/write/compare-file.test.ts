/**
 * The writer's `X.compare.json` (src/write/compare.ts): written in the runs' common folder once
 * every run of the input is written, never before; two inputs that share a name each get their
 * own file; a model that wrote no output is listed as missing. Real Redis, emulators, workers and
 * the writer (test/helpers/pipeline.ts).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { openQueue } from '../../queues/connect.ts';
import { writeJobId } from '../../queues/contracts.ts';
import { numberedPdf, writePdf } from '../../scripts/lib/pdf-writer.ts';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.ts';
import type { ComparisonFile } from '../../src/write/compare.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
const engines: Emulator[] = [];
afterEach(async () => {
  await p?.stop();
  await Promise.all(engines.splice(0).map((e) => e.close()));
  p = undefined;
});

/** A pipeline with no worker, its engine serving model-a, and a second engine serving model-b. */
async function twoEngines(b: Partial<EmulatorOptions> = {}): Promise<{ p: Pipeline; engineB: Emulator }> {
  p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { model: 'model-a', speed: 50 } });
  // The same reply lengths as the pipeline's engine: the two models answer alike but for their names.
  const engineB = await startEmulator({ model: 'model-b', speed: 50, outputTokensMin: 20, outputTokensMax: 60, ...b });
  engines.push(engineB);
  return { p, engineB };
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !(await check()) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 100));
}

const readCompare = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as ComparisonFile;

it('is written once every run of the input is written, beside the model folders in the --out folder', async () => {
  const { p, engineB } = await twoEngines();
  await p.startWorker({ workerName: 'gpu-a', imageSize: 512 });
  const pdf = join(p.dir, 'report.pdf');
  writeFileSync(pdf, numberedPdf(3));
  const [idA, idB] = acceptedIds(await p.enqueue([pdf], { task: { models: ['model-a', 'model-b'] }, out: 'batch' }));
  const target = join(p.config.outDir, 'batch', 'report.compare.json');

  // model-a's run is written (its write job done, comparison step included); model-b's waits for
  // a worker: no comparison yet.
  await p.wait([idA!]);
  const writes = openQueue('write', p.config, p.redis);
  try {
    const record = (await p.store.get(idA!))!;
    await until(async () => (await writes.getJobState(writeJobId(idA!, record.gen))) === 'completed');
    expect(await writes.getJobState(writeJobId(idA!, record.gen))).toBe('completed');
  } finally {
    await writes.close();
  }
  expect(existsSync(target)).toBe(false);

  await p.startWorker({ workerName: 'gpu-b', engineUrl: engineB.url, imageSize: 512 });
  await p.wait([idB!]);
  await until(() => existsSync(target));
  const c = readCompare(target);
  expect(c).toMatchObject({
    document: 'report',
    source: pdf,
    kind: 'text',
    models: ['model-a', 'model-b'],
    missing: [],
    outputs: { 'model-a': 'model-a/report.md', 'model-b': 'model-b/report.md' },
    runs: { 'model-a': { document: idA, generation: 1 }, 'model-b': { document: idB, generation: 1 } },
  });
  // The emulated replies differ only in the model's name: every page compared, nearly the same.
  expect(c.pages.map((pg) => pg.page)).toEqual([1, 2, 3]);
  for (const pg of c.pages) {
    expect(Object.keys(pg.pairs)).toEqual(['model-a vs model-b']);
    expect(pg).toMatchObject({ similarity: pg.pairs['model-a vs model-b'], agree: true, failed: [] });
    expect(pg.similarity).toBeGreaterThan(0.95);
    expect(pg.similarity).toBeLessThan(1);
  }
  expect(c).toMatchObject({ agreeing_pages: 3, agree: true });
  // Only the comparison sits beside the model folders.
  expect(readdirSync(join(p.config.outDir, 'batch')).sort()).toEqual(['model-a', 'model-b', 'report.compare.json']);
}, 120_000);

it('two inputs that share a name get a comparison file each', async () => {
  const { p, engineB } = await twoEngines();
  await p.startWorker({ workerName: 'gpu-a', imageSize: 512 });
  await p.startWorker({ workerName: 'gpu-b', engineUrl: engineB.url, imageSize: 512 });
  const file = (dir: string, pages: number) => {
    mkdirSync(join(p.dir, dir));
    const path = join(p.dir, dir, 'inv.pdf');
    writeFileSync(path, numberedPdf(pages));
    return path;
  };
  const one = file('one', 1);
  const two = file('two', 2);
  const out = p.config.outDir;

  // one/inv.pdf on model-a alone: out/model-a/inv.md, nothing to compare.
  await p.wait(acceptedIds(await p.enqueue([one], { task: { models: ['model-a'] } })));
  // two/inv.pdf on model-b then model-a: out/model-b/inv.md and out/model-a/inv-<hash>.md, compared as inv.
  await p.wait(acceptedIds(await p.enqueue([two], { task: { models: ['model-b', 'model-a'] } })));
  await until(() => existsSync(join(out, 'inv.compare.json')));
  expect(readCompare(join(out, 'inv.compare.json'))).toMatchObject({ source: two, outputs: { 'model-b': 'model-b/inv.md', 'model-a': expect.stringMatching(/^model-a\/inv-[0-9a-f]{8}\.md$/) } });

  // one/inv.pdf again, now on both models: its model-a run is already written; its model-b run
  // is new (out/model-b/inv-<hash>.md). Its first run is named inv, but inv.compare.json is the
  // other input's: this one gets its own name.
  const ids = acceptedIds(await p.enqueue([one], { task: { models: ['model-a', 'model-b'] } }));
  await p.wait(ids);
  await until(() => readdirSync(out).filter((f) => f.endsWith('.compare.json')).length === 2);
  const files = readdirSync(out).filter((f) => f.endsWith('.compare.json'));
  const other = files.find((f) => f !== 'inv.compare.json');
  expect(files).toContain('inv.compare.json');
  expect(other).toMatch(/^inv-[0-9a-f]{8}\.compare\.json$/);
  expect(readCompare(join(out, other!))).toMatchObject({ source: one, document: other!.replace(/\.compare\.json$/, ''), outputs: { 'model-a': 'model-a/inv.md', 'model-b': expect.stringMatching(/^model-b\/inv-[0-9a-f]{8}\.md$/) } });
  expect(readCompare(join(out, 'inv.compare.json')).source).toBe(two);
}, 120_000);

it('a model whose run wrote no output is listed as missing', async () => {
  // model-b's engine refuses this invoice: its JSON run fails and writes no X.json.
  const { p, engineB } = await twoEngines({ reject: { matchText: 'INV-0002' } });
  await p.startWorker({ workerName: 'gpu-a', imageSize: 512 });
  await p.startWorker({ workerName: 'gpu-b', engineUrl: engineB.url, imageSize: 512 });
  const schema = join(p.dir, 'schema.json');
  writeFileSync(schema, JSON.stringify({ type: 'object', properties: { invoice_number: { type: 'string' }, total: { type: 'number' } }, required: ['invoice_number', 'total'] }));
  const pdfs = ['INV-0001', 'INV-0002'].map((number, i) => {
    const path = join(p.dir, `inv-${i + 1}.pdf`);
    writeFileSync(path, writePdf({ pages: [{ lines: [`Invoice number: ${number}`, `Total: ${100 + i}.50`] }] }));
    return path;
  });
  const ids = acceptedIds(await p.enqueue(pdfs, { task: { schema, unit: 'document', prompt: 'Extract the invoice.', models: ['model-a', 'model-b'] } }));
  await p.wait(ids);
  const out = p.config.outDir;
  await until(() => existsSync(join(out, 'inv-1.compare.json')) && existsSync(join(out, 'inv-2.compare.json')));
  expect(readCompare(join(out, 'inv-1.compare.json'))).toMatchObject({ kind: 'fields', models: ['model-a', 'model-b'], missing: [], fields: 2, agreeing_fields: 2, agree: true });
  expect(readCompare(join(out, 'inv-2.compare.json'))).toMatchObject({
    kind: 'fields',
    models: ['model-a'],
    missing: ['model-b'],
    outputs: { 'model-a': 'model-a/inv-2.json', 'model-b': null },
    agree: false,
  });
}, 120_000);
