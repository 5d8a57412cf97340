/**
 * A page's answer with a code fence it never closes (a model cut off, or one that opens
 * ```markdown and forgets the end) must not swallow the pages after it: in X.md, rendered
 * by any CommonMark viewer, every later `<!-- page N -->` and its text would sit inside that
 * code block. So would a raw `<pre>` block never closed (it ends only at `</pre>`). The writer
 * closes what a page left open at the end of that page; a page whose blocks are closed is
 * written as it came. Answers come from a scripted engine, through a
 * real worker and writer.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import type { InferWorker } from '../../src/infer/worker.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { chatText, startScriptedEngine, type ScriptedEngine } from '../helpers/scripted-engine.ts';

const ANSWERS: Record<number, string> = {
  1: 'Intro.\n```python\nprint("page one")\n',
  2: '````markdown\n```\ninner\n',
  3: '~~~\ncode\n~~~\nAfter the block.',
  4: '  ~~~~ text\nstill code\n~~~\n',
  5: 'Plain page.',
  // A fence opened in a list item's text: closed inside the item (a closing fence at the margin
  // would end the list and open a new block that swallows what follows).
  6: '- A list item:\n\n  ```js\n  code();',
  // A raw HTML block that ends only at its closing tag, blank lines and marks included.
  7: '<pre>\nPreformatted text\n\nand more',
  8: 'Last page.',
};

/** The lines of a Markdown text that lie inside a fenced code block or a `<pre>` block (CommonMark's rules). */
function linesInFences(markdown: string): string[] {
  const inside: string[] = [];
  let open: { char: string; length: number } | null = null;
  let pre = false;
  for (const line of markdown.split('\n')) {
    if (pre) {
      if (line.includes('</pre>')) pre = false;
      else inside.push(line);
      continue;
    }
    if (!open && line.startsWith('<pre>')) {
      pre = true;
      continue;
    }
    const m = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(line);
    if (open) {
      if (m && m[1]![0] === open.char && m[1]!.length >= open.length && m[2]!.trim() === '') open = null;
      else inside.push(line);
    } else if (m && !(m[1]![0] === '`' && m[2]!.includes('`'))) open = { char: m[1]![0]!, length: m[1]!.length };
  }
  return inside;
}

describe('answers that leave a code fence or a <pre> block open', () => {
  let p: Pipeline;
  let scripted: ScriptedEngine;
  let worker: InferWorker;
  beforeAll(async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, config: { imageSize: 256 } });
    scripted = await startScriptedEngine(p.engine.url, (body) => {
      const page = /Page (\d+) of 8/.exec(chatText(body));
      return { content: ANSWERS[Number(page?.[1])] ?? 'unknown page' };
    });
    worker = await p.startWorker({ engineUrl: scripted.url });
  });
  afterAll(async () => {
    await worker?.close({ deadlineMs: 2000 });
    await scripted?.close();
    await p?.stop();
  });

  it('do not swallow the pages after them in X.md', async () => {
    const pdf = join(p.dir, 'fences.pdf');
    writeFileSync(pdf, numberedPdf(8, 40));
    const [docId] = acceptedIds(await p.enqueue([pdf]));
    const [done] = await p.wait([docId!], 60_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 8, failed: 0 });
    const markdown = readFileSync(join(p.config.outDir, 'fences.md'), 'utf8');
    // No page mark, and no text of another page, is inside a code block.
    const inside = linesInFences(markdown);
    expect(inside.filter((l) => l.includes('<!--'))).toEqual([]);
    expect(inside.sort()).toEqual(['inner', 'print("page one")', 'still code', '~~~', 'code', '```', '  code();', 'Preformatted text', '', 'and more'].sort());
    const pages = parsePages(markdown);
    expect([...pages.keys()]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // Closed with a fence of its own kind and length; closed pages are as they came.
    expect(pages.get(1)!.body).toBe('Intro.\n```python\nprint("page one")\n```');
    expect(pages.get(2)!.body).toBe('````markdown\n```\ninner\n````');
    expect(pages.get(3)!.body).toBe(ANSWERS[3]);
    expect(pages.get(4)!.body).toBe('~~~~ text\nstill code\n~~~\n~~~~'); // the answer comes trimmed
    expect(pages.get(6)!.body).toBe(ANSWERS[6] + '\n  ```');
    expect(pages.get(5)!.body).toBe(ANSWERS[5]);
    expect(pages.get(7)!.body).toBe(`${ANSWERS[7]}\n</pre>`);
    expect(pages.get(8)!.body).toBe(ANSWERS[8]);
  }, 90_000);
});
