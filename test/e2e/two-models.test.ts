/**
 * Several models side by side, end to end (issue 10, "Done when"): two engines serving model-a
 * (exact) and model-b (alters 25 % of the fields it reads), a worker each, 40 generated invoice
 * PDFs enqueued once for both models through the real CLI, then `docbatch eval --json` and
 * `docbatch compare --json` through the real CLI, checked against the emulator's own ledger of
 * which fields it altered. And pages and chats going to different models: a vision model for a
 * PDF, a text-only model (a `--text-only` worker) for a chat export.
 *
 * The invoices: test/helpers/invoices.ts's `invoices(n, seed)` gives the truth; the PDFs (one page
 * of `Label: value` lines, which the emulator reads) are made here, as `makeInvoices` will be on
 * h/tasks (same shape: `[{pdf, truth, name}]`).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { numberedPdf, writePdf } from '../../scripts/lib/pdf-writer.ts';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { WorkerMetrics } from '../../src/observe/metrics.ts';
import type { ComparisonFile } from '../../src/write/compare.ts';
import { runCli } from '../helpers/cli.ts';
import { invoices, type Invoice } from '../helpers/invoices.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

export const INVOICE_SCHEMA = {
  type: 'object',
  properties: {
    invoice_number: { type: 'string' },
    date: { type: 'string', format: 'date' },
    due_date: { type: 'string', format: 'date' },
    currency: { type: 'string' },
    vendor: { type: 'object', properties: { name: { type: 'string' }, vat_id: { type: 'string' } }, required: ['name', 'vat_id'], additionalProperties: false },
    customer: { type: 'object', properties: { name: { type: 'string' }, city: { type: 'string' } }, required: ['name', 'city'], additionalProperties: false },
    items: {
      type: 'array',
      items: {
        type: 'object',
        properties: { description: { type: 'string' }, quantity: { type: 'integer' }, unit_price: { type: 'number' }, amount: { type: 'number' } },
        required: ['description', 'quantity', 'unit_price', 'amount'],
        additionalProperties: false,
      },
    },
    subtotal: { type: 'number' },
    tax: { type: 'number' },
    total: { type: 'number' },
  },
  required: ['invoice_number', 'date', 'due_date', 'currency', 'vendor', 'customer', 'items', 'subtotal', 'tax', 'total'],
  additionalProperties: false,
};

/** One page of `Label: value` lines: what an invoice's text layer says. */
function invoicePdf(inv: Invoice): Buffer {
  const lines = [
    `Invoice number: ${inv.invoice_number}`,
    `Date: ${inv.date}`,
    `Due date: ${inv.due_date}`,
    `Currency: ${inv.currency}`,
    `Vendor name: ${inv.vendor.name}`,
    `Vendor VAT ID: ${inv.vendor.vat_id}`,
    `Customer name: ${inv.customer.name}`,
    `Customer city: ${inv.customer.city}`,
    ...inv.items.flatMap((it) => [`Description: ${it.description}`, `Quantity: ${it.quantity}`, `Unit price: ${it.unit_price}`, `Amount: ${it.amount}`]),
    `Subtotal: ${inv.subtotal}`,
    `Tax: ${inv.tax}`,
    `Total: ${inv.total}`,
  ];
  return writePdf({ pages: [{ lines, fontSize: 11 }] });
}

/** `n` invoices as PDFs in `dir`: `[{pdf, truth, name}]` (truth: the invoice object). */
function makeInvoices(dir: string, n: number, seed: number): Array<{ pdf: string; truth: Invoice; name: string }> {
  mkdirSync(dir, { recursive: true });
  return invoices(n, seed).map((truth, i) => {
    const name = `invoice-${String(i + 1).padStart(2, '0')}`;
    const pdf = join(dir, `${name}.pdf`);
    writeFileSync(pdf, invoicePdf(truth));
    return { pdf, truth, name };
  });
}

/** Polls until `check` holds (a generous bound; the caller's expectation says what was missing). */
async function until(check: () => boolean, timeoutMs = 30_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !check() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 100));
}

let p: Pipeline | undefined;
const engines: Emulator[] = [];
afterEach(async () => {
  await p?.stop();
  await Promise.all(engines.splice(0).map((e) => e.close()));
  p = undefined;
});

describe('two models, one enqueue', () => {
  it('model-a exact, model-b altering 25 % of fields: eval scores each as the engines say, compare lists exactly the altered fields', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { model: 'model-a', speed: 50 } });
    const engineB = await startEmulator({ model: 'model-b', alterFields: 0.25, speed: 50 });
    engines.push(engineB);
    await p.startWorker({ workerName: 'gpu-a', imageSize: 512 });
    await p.startWorker({ workerName: 'gpu-b', engineUrl: engineB.url, imageSize: 512 });

    const docs = makeInvoices(join(p.dir, 'invoices'), 40, 10);
    const truthDir = join(p.dir, 'truth');
    mkdirSync(truthDir);
    for (const d of docs) writeFileSync(join(truthDir, `${d.name}.json`), JSON.stringify(d.truth));
    const schema = join(p.dir, 'invoice.schema.json');
    writeFileSync(schema, JSON.stringify(INVOICE_SCHEMA));
    const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir };

    // Enqueued once, for both models; --wait returns when all 80 runs are written.
    const enq = await runCli(
      ['enqueue', join(p.dir, 'invoices'), '--schema', schema, '--prompt', 'Extract the invoice fields as JSON.', '--unit', 'document', '--model', 'model-a', '--model', 'model-b', '--wait', '--json'],
      env,
      { timeoutMs: 240_000 },
    );
    expect(enq.code, enq.stderr).toBe(0);
    const out = p.config.outDir;
    expect(readdirSync(join(out, 'model-a')).filter((f) => f.endsWith('.json') && !f.endsWith('.report.json'))).toHaveLength(40);
    expect(readdirSync(join(out, 'model-b')).filter((f) => f.endsWith('.json') && !f.endsWith('.report.json'))).toHaveLength(40);

    // The engines' ledgers: which fields each model really got right (one answer per invoice).
    const ledger = (e: Emulator) => {
      const byInvoice = new Map<string, { altered: string[]; fields: number }>();
      for (const a of e.answers()) {
        if (!a.fields) continue;
        const number = a.fields.find((f) => f.path === 'invoice_number')!;
        byInvoice.set(String(number.read ?? number.value), { altered: a.fields.filter((f) => f.altered).map((f) => f.path).sort(), fields: a.fields.length });
      }
      return byInvoice;
    };
    const [ledgerA, ledgerB] = [ledger(p.engine), ledger(engineB)];
    expect(ledgerA.size).toBe(40);
    expect(ledgerB.size).toBe(40);
    expect(p.engine.stats().fields).toMatchObject({ altered: 0, filled: 0 });
    expect(engineB.stats().fields.filled).toBe(0);
    const fieldsB = [...ledgerB.values()].reduce((s, l) => s + l.fields, 0);
    const alteredB = [...ledgerB.values()].reduce((s, l) => s + l.altered.length, 0);
    const reallyRightB = 1 - alteredB / fieldsB;
    // 25 % of some 800 fields, give or take four standard deviations.
    expect(alteredB / fieldsB).toBeGreaterThan(0.19);
    expect(alteredB / fieldsB).toBeLessThan(0.31);

    // docbatch eval, through the real CLI.
    const evaluation = await runCli(['eval', out, '--truth', truthDir, '--json'], {}, { timeoutMs: 60_000 });
    expect(evaluation.code, evaluation.stderr).toBe(0);
    const scores = JSON.parse(evaluation.stdout) as { models: Record<string, { documents: number; missing_outputs: number; fields: number; field_accuracy: number }> };
    expect(Object.keys(scores.models).sort()).toEqual(['model-a', 'model-b']);
    expect(scores.models['model-a']).toMatchObject({ documents: 40, missing_outputs: 0, fields: fieldsB });
    expect(scores.models['model-a']!.field_accuracy).toBeGreaterThanOrEqual(0.99);
    expect(Math.abs(scores.models['model-b']!.field_accuracy - reallyRightB)).toBeLessThanOrEqual(0.02);

    // X.compare.json per invoice, written by the writer once both runs were written: exactly
    // the fields model-b altered disagree.
    const nameOf = new Map(docs.map((d) => [d.truth.invoice_number, d.name]));
    const compareFile = (name: string) => join(out, `${name}.compare.json`);
    await until(() => docs.every((d) => existsSync(compareFile(d.name))));
    for (const d of docs) {
      const c = JSON.parse(readFileSync(compareFile(d.name), 'utf8')) as ComparisonFile;
      expect(c.models).toEqual(['model-a', 'model-b']);
      expect(c.outputs).toEqual({ 'model-a': `model-a/${d.name}.json`, 'model-b': `model-b/${d.name}.json` });
      expect(c.disagreements.map((x) => x.path).sort(), d.name).toEqual(ledgerB.get(d.truth.invoice_number)!.altered);
    }
    expect(readdirSync(out).filter((f) => f.endsWith('.compare.json'))).toHaveLength(40);

    // docbatch compare over the whole run says the same.
    const compared = await runCli(['compare', out, '--json'], {}, { timeoutMs: 60_000 });
    expect(compared.code, compared.stderr).toBe(0);
    const run = JSON.parse(compared.stdout) as { documents: number; fields: number; agreeing_fields: number; disagreements: Array<{ document: string; fields: Array<{ path: string }> }> };
    expect(run.documents).toBe(40);
    expect(run.fields - run.agreeing_fields).toBe(alteredB);
    const listed = run.disagreements.flatMap((x) => x.fields.map((f) => `${x.document} ${f.path}`)).sort();
    const altered = [...ledgerB].flatMap(([number, l]) => l.altered.map((path) => `${nameOf.get(number)} ${path}`)).sort();
    expect(listed).toEqual(altered);
  }, 300_000);
});

describe('pages and chats on different models', () => {
  it('a vision model takes the PDF, a text-only model (a --text-only worker) the chat export', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { model: 'vision-vl', speed: 50 } });
    const text = await startEmulator({ model: 'text-llm', acceptsImages: false, speed: 50 });
    engines.push(text);
    const vision = await p.startWorker({ workerName: 'vision', imageSize: 512 });
    const reader = await p.startWorker({ workerName: 'reader', engineUrl: text.url, textOnly: true });
    const metrics = [vision, reader].map((w) => {
      const m = new WorkerMetrics({ processMetrics: false, labels: { worker: w.config.workerName } });
      m.attach(w);
      return m;
    });
    expect(reader.queueNames()).toEqual([expect.stringMatching(/^infer-text-llm-[0-9a-f]{6}$/)]);
    expect(vision.queueNames()).toContain('infer');

    const pdf = join(p.dir, 'scan.pdf');
    writeFileSync(pdf, numberedPdf(6));
    const chat = join(import.meta.dirname, '../../samples/conversations.json');
    const visionBefore = p.engine.stats().completed;
    const textBefore = text.stats();
    const ids = [...acceptedIds(await p.enqueue([pdf], { task: { models: ['vision-vl'] } })), ...acceptedIds(await p.enqueue([chat], { task: { models: ['text-llm'] } }))];
    const done = await p.wait(ids, 120_000);
    for (const d of done) expect(d.record).toMatchObject({ state: 'written', failed: 0 });

    const out = p.config.outDir;
    const pages = parsePages(readFileSync(join(out, 'vision-vl', 'scan.md'), 'utf8'));
    expect([...pages.keys()]).toEqual([1, 2, 3, 4, 5, 6]);
    for (const page of pages.values()) expect(page.body).toMatch(/^\[emulated reply by vision-vl\]/);
    expect(JSON.parse(readFileSync(join(out, 'vision-vl', 'scan.report.json'), 'utf8')).models).toEqual(['vision-vl']);
    const lines = readFileSync(join(out, 'text-llm', 'conversations.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { model: string; summary: string | null; usage: { completion_tokens: number } });
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatchObject({ model: 'text-llm', summary: expect.stringMatching(/^\[emulated reply by text-llm\]/) });

    // Each engine saw only its own work: the vision engine the 6 pages, the text engine the
    // chunks and not one image (its start-up probe aside).
    expect(p.engine.stats().completed - visionBefore).toBe(6);
    expect(text.stats().completed - textBefore.completed).toBe(lines.length);
    expect(text.stats().errors.not_multimodal ?? 0).toBe(textBefore.errors.not_multimodal ?? 0);

    // The metrics say which model did the work: units and tokens labelled by model (first the
    // vision worker's registry, then the text worker's).
    const series = async (name: string) => (await Promise.all(metrics.map(async (m) => (await m.registry.getSingleMetric(name)!.get()).values))).flat().filter((v) => v.value > 0);
    expect((await series('docbatch_units_completed_total')).map((v) => [v.labels, v.value])).toEqual([
      [{ kind: 'page', model: 'vision-vl' }, 6],
      [{ kind: 'chunk', model: 'text-llm' }, lines.length],
    ]);
    const tokens = await series('docbatch_completion_tokens_total');
    expect(tokens.map((v) => v.labels.model)).toEqual(['vision-vl', 'text-llm']);
    expect(tokens[1]!.value).toBe(lines.reduce((s, l) => s + l.usage.completion_tokens, 0));
  }, 180_000);
});
