/**
 * Results belong to their task (issue 9): the same file under another task or model is a run of
 * its own that neither collides with the first (no DOC_CONFLICT) nor disturbs it; the same file
 * under the same task — written in another key order, YAML or JSON — resumes (here: is already
 * written, and nothing is sent). A task whose unit does not fit an input, and a document longer
 * than the task's max_pages, reject that file only, with their codes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

describe('runs of one file under several tasks', () => {
  let p: Pipeline;
  let pdf: string;
  beforeAll(async () => {
    p = await startPipeline({ file: import.meta.filename, config: { imageSize: 256, pageMaxTokens: 200 } });
    pdf = join(p.dir, 'memo.pdf');
    writeFileSync(pdf, numberedPdf(2, 10));
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('another task is another run, beside the first; the same task in another spelling is the same run', async () => {
    const first = join(p.dir, 'headings.yaml');
    writeFileSync(first, 'name: headings\nprompt: "The headings of page {{page}}."\nsampling:\n  temperature: 0\n  max_tokens: 100\n');
    const [a] = acceptedIds(await p.enqueue([pdf], { task: { task: first } }));
    await p.wait([a!]);
    const firstOutput = readFileSync(join(p.config.outDir, 'memo.md'), 'utf8');

    const [b] = acceptedIds(await p.enqueue([pdf], { task: { prompt: 'Only the first line of each page.' } }));
    expect(b).not.toBe(a);
    const [done] = await p.wait([b!]);
    expect(done!.record.state).toBe('written');
    expect(done!.record.files.some((f) => /memo-[0-9a-f]{8}\.md$/.test(f))).toBe(true);
    // The first run's record and output are as they were.
    expect((await p.store.get(a!))!.state).toBe('written');
    expect(readFileSync(join(p.config.outDir, 'memo.md'), 'utf8')).toBe(firstOutput);

    // The first task again, as JSON with its keys in another order and another name: the same run.
    const again = join(p.dir, 'headings.json');
    writeFileSync(again, JSON.stringify({ sampling: { max_tokens: 100, temperature: 0 }, prompt: 'The headings of page {{page}}.', name: 'renamed' }));
    const sent = p.engine.stats().requests;
    const [o] = await p.enqueue([pdf], { task: { task: again } });
    expect(o!.runs).toMatchObject([{ docId: a, outcome: 'done' }]);
    expect(p.engine.stats().requests).toBe(sent);
  }, 120_000);

  it('a task that does not fit an input, or a document longer than max_pages, rejects that file only', async () => {
    const chat = join(p.dir, 'talk.jsonl');
    writeFileSync(chat, `${JSON.stringify({ id: 'c1', title: 'Hi', messages: [{ role: 'user', content: 'hello' }] })}\n`);
    const long = join(p.dir, 'long.pdf');
    writeFileSync(long, numberedPdf(9, 4));
    const outcomes = await p.enqueue([pdf, chat, long], { task: { unit: 'document', prompt: 'What is this document about?' } });
    const byFile = new Map(outcomes.map((o) => [o.file, o]));
    expect(byFile.get(pdf)!.runs).toMatchObject([{ unit: 'document', units: 1 }]);
    expect(byFile.get(chat)!.error!.code).toBe('TASK_UNIT_MISMATCH');
    expect(byFile.get(chat)!.error!.describe()).toContain('works on document units, which a chat export does not have (use chunk or conversation)');
    expect(byFile.get(long)!.error!.code).toBe('DOC_TOO_MANY_PAGES');
    expect(byFile.get(long)!.error!.describe()).toContain('has 9 pages, more than its max_pages 8');
    await p.wait(acceptedIds([byFile.get(pdf)!]));
  }, 120_000);
});
