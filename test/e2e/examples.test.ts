/**
 * The task files in examples/ do what docs/tasks.md says, through a real worker and writer:
 * invoice extraction (document unit, schema file) gives each invoice's truth; page
 * classification gives one validated line per page; the conversation summary gives one JSON
 * line per conversation, long ones answered from their parts' summaries.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePdf } from '../../scripts/lib/pdf-writer.ts';
import { loadTaskFile } from '../../src/task/load.ts';
import { schemaViolations } from '../../src/task/schema.ts';
import { INVOICE_SCHEMA, makeInvoices } from '../helpers/invoices.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');

describe('examples/', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await startPipeline({ file: import.meta.filename, config: { imageSize: 512, chunkTokens: 300 } });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('every example loads; the invoice schema is the one the tests generate invoices for', () => {
    expect(loadTaskFile(join(EXAMPLES, 'invoice.yaml'))).toMatchObject({ name: 'invoice', unit: 'document', maxPages: 4, output: { type: 'json', name: 'invoice', schema: INVOICE_SCHEMA } });
    expect(loadTaskFile(join(EXAMPLES, 'classify-pages.yaml'))).toMatchObject({ unit: 'page', output: { type: 'json', name: 'page_kind' }, image: { size: 896 } });
    expect(loadTaskFile(join(EXAMPLES, 'conversation-summary.yaml'))).toMatchObject({ unit: 'conversation', output: { type: 'json', name: 'conversation_summary' } });
  });

  it('invoice.yaml: each X.json is the invoice\'s truth', async () => {
    const invoices = makeInvoices(join(p.dir, 'invoices'), 6, 21);
    const ids = acceptedIds(await p.enqueue(invoices.map((i) => i.pdf), { task: { task: join(EXAMPLES, 'invoice.yaml') } }));
    await p.wait(ids, 120_000);
    for (const inv of invoices) expect(JSON.parse(readFileSync(join(p.config.outDir, `${inv.name}.json`), 'utf8')), inv.name).toEqual(inv.truth);
  }, 150_000);

  it('classify-pages.yaml: one validated line per page, in order', async () => {
    const file = join(p.dir, 'mixed.pdf');
    writeFileSync(
      file,
      writePdf({
        pages: [
          { lines: ['Kind: letter', 'Heading: Dear Ms Lovelace', 'Signed: yes'] },
          { lines: ['Kind: invoice', 'Heading: Invoice INV-7', 'Signed: no'] },
          { lines: ['Kind: table', 'Signed: no', '1 2 3 4'] },
        ],
      }),
    );
    const ids = acceptedIds(await p.enqueue([file], { task: { task: join(EXAMPLES, 'classify-pages.yaml') } }));
    await p.wait(ids, 120_000);
    const lines = readFileSync(join(p.config.outDir, 'mixed.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { page: number; data: unknown });
    expect(lines.map((l) => [l.page, l.data])).toEqual([
      [1, { kind: 'letter', heading: 'Dear Ms Lovelace', signed: true }],
      [2, { kind: 'invoice', heading: 'Invoice INV-7', signed: false }],
      [3, { kind: 'table', heading: null, signed: false }],
    ]);
  }, 150_000);

  it('conversation-summary.yaml: one JSON line per conversation, valid against its schema', async () => {
    const conv = (id: string, turns: number) =>
      JSON.stringify({
        id,
        title: `Talk ${id}`,
        messages: Array.from({ length: turns }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `${id} message ${i}: ${'we weigh Redis against Postgres for the queue '.repeat(8)}` })),
      });
    const file = join(p.dir, 'talks.jsonl');
    const decided = JSON.stringify({
      id: 'short',
      title: 'Talk short',
      messages: [
        { role: 'user', content: 'Shall we queue on Redis or Postgres?' },
        { role: 'assistant', content: 'Redis, with AOF on.\nDecision: use Redis for the queue\nOpen question: which Redis host?' },
      ],
    });
    writeFileSync(file, [conv('long', 10), decided].join('\n'));
    const ids = acceptedIds(await p.enqueue([file], { task: { task: join(EXAMPLES, 'conversation-summary.yaml') } }));
    await p.wait(ids, 120_000);
    const lines = readFileSync(join(p.config.outDir, 'talks.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.conversation_id, l.chunk])).toEqual([
      ['long', 'conversation'],
      ['short', 'conversation'],
    ]);
    expect((lines[0]!.chunks as number) > 1).toBe(true);
    const schema = loadTaskFile(join(EXAMPLES, 'conversation-summary.yaml')).output as { schema: Record<string, unknown> };
    for (const line of lines) {
      expect(line.error).toBeUndefined();
      expect(schemaViolations(schema.schema, line.data)).toBeNull();
    }
    // The short conversation is answered from its own text (the emulator reads its labelled lines).
    expect(lines[1]!.data).toMatchObject({ decisions: ['use Redis for the queue'], open_questions: ['which Redis host?'] });
  }, 150_000);
});
