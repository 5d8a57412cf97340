/**
 * `docbatch eval` and `docbatch compare` on X.md outputs holding the writer's own comments
 * (src/write/assemble.ts): a page that fell back to its text layer carries a
 * `<!-- page N fallback: ... -->` note under its marker, and a document-unit text task whose unit
 * failed is written as `<!-- document failed: CODE: message -->` alone. Neither comment is text
 * the model wrote: the note is not scored, and the failed document is a missing output (eval) and
 * a failed text (compare), never a text that two failed models agree on.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { writeOutputs } from '../helpers/outputs.ts';

const A = 'org/A';
const B = 'org/B';
const env = { LOG_FORMAT: 'json' };
const oom = { unit: 0, code: 'ENGINE_OOM', message: 'CUDA out of memory' };

let root: string;
let out: string;
let truth: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'docbatch-eval-notes-'));
  out = join(root, 'run');
  truth = join(root, 'truth');
  const failedDoc = '<!-- document failed: ENGINE_OOM: CUDA out of memory -->\n';
  writeOutputs(join(out, 'a'), [
    // Exactly what assemble.ts writes for page 1 falling back to its text layer.
    { name: 'book', models: [A], md: '<!-- page 1 -->\n<!-- page 1 fallback: text layer (every answer was rejected: EMPTY_ANSWER, EMPTY_ANSWER) -->\nHello world\n\n<!-- page 2 -->\nSecond page\n\n' },
    { name: 'letter', models: [A], md: failedDoc, failed: [oom] },
  ]);
  writeOutputs(join(out, 'b'), [
    { name: 'book', models: [B], md: '<!-- page 1 -->\nHello world\n\n<!-- page 2 -->\nSecond page\n\n' },
    { name: 'letter', models: [B], md: failedDoc, failed: [oom] },
  ]);
  mkdirSync(truth, { recursive: true });
  writeFileSync(join(truth, 'book.md'), '<!-- page 1 -->\nHello world\n<!-- page 2 -->\nSecond page\n');
  writeFileSync(join(truth, 'letter.md'), 'Dear Sir');
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('the writer’s comments in X.md', () => {
  it('eval: a fallback note is not page text; a failed document is missing, with its code', async () => {
    const r = await runCli(['eval', out, '--truth', truth, '--json', '--model', A], env);
    expect(r.code).toBe(0);
    const a = JSON.parse(r.stdout).models[A];
    const book = a.per_document.find((d: { document: string }) => d.document === 'book');
    expect(book).toMatchObject({ status: 'scored', chars: 22, char_edits: 0, cer: 0, words: 4, word_edits: 0 });
    expect(book.pages.map((p: { page: number; char_edits: number }) => [p.page, p.char_edits])).toEqual([
      [1, 0],
      [2, 0],
    ]);
    const letter = a.per_document.find((d: { document: string }) => d.document === 'letter');
    // "Dear Sir": 8 characters, 2 words, all deleted.
    expect(letter).toMatchObject({ status: 'missing', output: 'a/letter.md', chars: 8, char_edits: 8, cer: 1, words: 2, word_edits: 2 });
    expect(a.missing).toEqual([{ document: 'letter', truth: 'letter.md', reason: 'the output says the document failed: ENGINE_OOM: CUDA out of memory' }]);
    expect(a).toMatchObject({ missing_outputs: 1, chars: 30, char_edits: 8, words: 6, word_edits: 2 });
  });

  it('compare: a fallback note is not a difference; two failed documents do not agree', async () => {
    const r = await runCli(['compare', out, '--json'], env);
    expect(r.code).toBe(0);
    const run = JSON.parse(r.stdout);
    expect(run).toMatchObject({ documents: 2, agreeing_documents: 1, pages: 3, agreeing_pages: 2 });
    expect(run.disagreements).toEqual([
      { document: 'letter', outputs: { [A]: 'a/letter.md', [B]: 'b/letter.md' }, fields: [], pages: [{ page: null, similarity: 0, pairs: { [`${A} vs ${B}`]: 0 }, agree: false, failed: [A, B] }], failed_units: { [A]: ['document'], [B]: ['document'] } },
    ]);
  });
});
