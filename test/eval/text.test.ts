/** Text metrics against hand-worked values: page markers, CER and WER per page and whole, similarity. */
import { describe, expect, it } from 'vitest';
import { parseMarkedText, scoreText, similarity, textCounts } from '../../src/eval/text.ts';

describe('parseMarkedText', () => {
  it('splits at page markers, keeps failed pages, and leaves out text before the first marker', () => {
    const t = parseMarkedText('title\n<!-- page 1 -->\nfirst\npage\n<!-- page 2 failed: ENGINE_OOM: CUDA out of memory -->\n<!-- page 3 -->\nthird\n');
    expect(t.pages).toEqual([
      { page: 1, text: 'first\npage' },
      { page: 2, text: '', failed: { code: 'ENGINE_OOM', message: 'CUDA out of memory' } },
      { page: 3, text: 'third\n' },
    ]);
    expect(t.text).toBe('first\npage\n\nthird\n');
  });

  it('a text without markers is one text', () => {
    expect(parseMarkedText('just\ntext')).toEqual({ pages: null, text: 'just\ntext' });
  });

  it('the writer’s fallback note is not text; a failed document is a failed text', () => {
    const t = parseMarkedText('<!-- page 1 -->\n<!-- page 1 fallback: text layer (every answer was rejected: EMPTY_ANSWER) -->\nHello\n\n<!-- page 2 -->\nWorld\n');
    expect(t.pages).toEqual([
      { page: 1, text: 'Hello\n' },
      { page: 2, text: 'World\n' },
    ]);
    expect(parseMarkedText('<!-- document failed: ENGINE_OOM: CUDA out of memory -->\n')).toEqual({ pages: null, text: '', failed: { code: 'ENGINE_OOM', message: 'CUDA out of memory' } });
  });

  it('reads markers typed by hand: spacing and capitals as people write them', () => {
    const t = parseMarkedText('<!--page 1-->\r\nfirst\r\n  <!-- Page 2 -->  \r\nsecond\r\n<!--  PAGE  3  failed: ENGINE_OOM: out of memory  -->\r\n');
    expect(t.pages).toEqual([
      { page: 1, text: 'first' },
      { page: 2, text: 'second' },
      { page: 3, text: '', failed: { code: 'ENGINE_OOM', message: 'out of memory' } },
    ]);
  });

  it('a marker must be alone on its line', () => {
    expect(parseMarkedText('see <!-- page 2 --> here').pages).toBeNull();
  });
});

describe('textCounts', () => {
  it.each<[string, string, boolean, [number, number, number, number]]>([
    // [chars, char_edits, words, word_edits]
    ['The quick brown fox', 'The quikc brown fox', false, [19, 2, 4, 1]],
    ['Hello  World', 'hello world', false, [11, 0, 2, 0]],
    ['Hello World', 'hello world', true, [11, 2, 2, 2]],
    ['ab', 'abcd', false, [2, 2, 1, 1]],
    ['one two three', '', false, [13, 13, 3, 3]],
    ['', 'noise', false, [0, 5, 0, 1]],
    ['a\n\nb', 'a b', false, [3, 0, 2, 0]],
  ])('%j vs %j (case-sensitive %j)', (truth, output, caseSensitive, [chars, charEdits, words, wordEdits]) => {
    expect(textCounts(truth, output, caseSensitive)).toEqual({ chars, char_edits: charEdits, words, word_edits: wordEdits, exact: true });
  });
});

describe('scoreText', () => {
  const truth = parseMarkedText('<!-- page 1 -->\none two three\n<!-- page 2 -->\nfour five\n<!-- page 3 -->\nsix\n');

  it('scores each truth page against the output page of the same number', () => {
    const output = parseMarkedText('<!-- page 1 -->\none two thre\n<!-- page 2 failed: ENGINE_OOM: out of memory -->\n<!-- page 4 -->\nseven\n');
    const s = scoreText(truth, output);
    expect(s.pages).toEqual([
      { page: 1, chars: 13, char_edits: 1, words: 3, word_edits: 1, exact: true, cer: 1 / 13, wer: 1 / 3, status: 'scored' },
      { page: 2, chars: 9, char_edits: 9, words: 2, word_edits: 2, exact: true, cer: 1, wer: 1, status: 'failed', code: 'ENGINE_OOM' },
      { page: 3, chars: 3, char_edits: 3, words: 1, word_edits: 1, exact: true, cer: 1, wer: 1, status: 'missing' },
    ]);
    expect(s).toMatchObject({ chars: 25, char_edits: 13, cer: 13 / 25, words: 6, word_edits: 4, wer: 4 / 6, unscored_pages: [4] });
  });

  it('a missing output deletes every truth page', () => {
    const s = scoreText(truth, null);
    expect(s).toMatchObject({ chars: 25, char_edits: 25, cer: 1, words: 6, word_edits: 6, wer: 1 });
    expect(s.pages!.map((p) => p.status)).toEqual(['missing', 'missing', 'missing']);
  });

  it('compares whole texts when only one side has markers; failed pages add nothing', () => {
    const plain = parseMarkedText('one two three four');
    const output = parseMarkedText('<!-- page 1 -->\none two\n<!-- page 2 failed: RENDER_FAILED: bad page -->\n<!-- page 3 -->\nthree four\n');
    expect(scoreText(plain, output)).toMatchObject({ pages: null, chars: 18, char_edits: 0, words: 4, word_edits: 0 });
    expect(scoreText(truth, parseMarkedText('one two three four five six'))).toMatchObject({ pages: null, chars: 27, char_edits: 0 });
  });
});

describe('similarity', () => {
  it.each<[string, string, number]>([
    ['abcd', 'abce', 0.75],
    ['abcd', 'ABCD', 1],
    ['', '', 1],
    ['ab', '', 0],
    ['ab', 'abcd', 0.5],
  ])('%j ~ %j = %d', (a, b, s) => {
    expect(similarity(a, b)).toBe(s);
  });
});
