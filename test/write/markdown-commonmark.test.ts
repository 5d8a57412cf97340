/**
 * X.md read by commonmark.js, the reference CommonMark parser (not our own idea of the rules):
 * whatever a page's answer leaves open (a code fence, a raw HTML block of any kind that runs
 * past blank lines), every page's mark is still its own HTML block, so no page is swallowed by
 * the one before it in a Markdown viewer.
 */
import { Parser } from 'commonmark';
import { describe, expect, it } from 'vitest';
import { pageBlock } from '../../src/write/assemble.ts';

const ANSWERS = [
  'Intro.\n```python\nprint(1)',
  '````markdown\n```\ninner',
  '~~~ text\nstill code',
  '- item\n\n  ```\n  code();',
  '<pre>\nPreformatted text\n\nand more',
  '<script>\nlet a = 1;',
  '<style>\np { }',
  '<textarea>\ntyped',
  '<?php echo "x";\n\nmore php',
  '<!DOCTYPE html\n\nstill a declaration',
  '<![CDATA[\nraw\n\ndata',
  '<!-- a comment the model opened\n\nand never closed',
  '> quote\n```\nfenced in a quote',
  'plain text at the end',
];

describe('X.md in a CommonMark parser', () => {
  it('every page mark is its own HTML block, whatever the answer before it left open', () => {
    const markdown = ANSWERS.map((text, i) => pageBlock(i + 1, { ok: true, text, model: 'm' } as Parameters<typeof pageBlock>[1])).join('');
    const tree = new Parser().parse(markdown);
    const marks: string[] = [];
    const walker = tree.walker();
    for (let event = walker.next(); event; event = walker.next()) {
      const node = event.node;
      if (event.entering && node.type === 'html_block' && node.parent === tree) {
        const mark = /^<!-- page (\d+) -->/.exec(node.literal ?? '');
        if (mark) marks.push(mark[1]!);
      }
    }
    expect(marks).toEqual(ANSWERS.map((_, i) => String(i + 1)));
  });
});
