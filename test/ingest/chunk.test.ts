import { countTokens as cl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { describe, expect, it } from 'vitest';
import { chunkMessages, splitText } from '../../src/ingest/chunk.ts';
import type { ChatMessage } from '../../src/ingest/chat/types.ts';
import { estimateTokens, TokenTally } from '../../src/ingest/tokens.ts';
import { sampleText } from '../../bench/lib/text-corpus.ts';

const opts = (budgetTokens: number, overlapTokens = 0, countTokens = estimateTokens) => ({ budgetTokens, overlapTokens, countTokens });
const msg = (id: string, text: string, role = 'user'): ChatMessage => ({ id, role, text });

describe('chunkMessages', () => {
  it('packs whole messages greedily within the budget, in order', () => {
    const messages = Array.from({ length: 50 }, (_, k) => msg(`m${k}`, sampleText('english', k, 200 + k * 10), k % 2 ? 'assistant' : 'user'));
    const chunks = chunkMessages(messages, opts(300));
    expect(chunks.flatMap((c) => c.messageIds)).toEqual(messages.map((m) => m.id));
    for (const c of chunks) {
      expect(c.tokens).toBe(estimateTokens(c.text));
      expect(c.tokens).toBeLessThanOrEqual(300);
    }
    // Greedy: a chunk could not have taken the next chunk's first message.
    for (let k = 0; k + 1 < chunks.length; k++) {
      const next = messages.find((m) => m.id === chunks[k + 1]?.messageIds[0]) as ChatMessage;
      expect(estimateTokens(`${chunks[k]?.text}\n\n${next.role}: ${next.text}`)).toBeGreaterThan(300);
    }
    expect(chunks[0]?.text.startsWith(`user: ${messages[0]?.text}\n\nassistant: `)).toBe(true);
  });

  it('splits a long message into labelled parts, its id in every chunk holding a part', () => {
    const long = sampleText('english', 1, 20_000);
    const chunks = chunkMessages([msg('a', 'short'), msg('b', long, 'assistant'), msg('c', 'after')], opts(500));
    const withB = chunks.filter((c) => c.messageIds.includes('b'));
    expect(withB.length).toBeGreaterThan(5);
    withB.forEach((c, k) => expect(c.text).toContain(`assistant (part ${k + 1}/${withB.length}): `));
    for (const c of chunks) expect(c.tokens).toBeLessThanOrEqual(500);
    // Nothing lost: the parts' words, joined, are the message's words.
    const parts = withB.map((c) => c.text.split(/assistant \(part \d+\/\d+\): /)[1]?.split('\n\nuser: ')[0] ?? '');
    expect(parts.join(' ').split(/\s+/)).toEqual(long.split(/\s+/));
  });

  it('cuts at paragraphs first, then sentences, then characters', () => {
    const para = (k: number) => `Paragraph ${k}. ${'Words go here. '.repeat(8).trim()}`;
    const text = [para(1), para(2), para(3), para(4)].join('\n\n');
    const limit = estimateTokens(`${para(1)}\n\n${para(2)}`) + 2;
    expect(splitText(text, limit, estimateTokens)).toEqual([`${para(1)}\n\n${para(2)}`, `${para(3)}\n\n${para(4)}`]);
    const sentences = 'One two three. Four five six! Seven eight nine? Ten eleven twelve.';
    for (const piece of splitText(sentences, 12, estimateTokens)) expect(piece).toMatch(/[.!?]$/);
    const cjk = '東京は日本の首都です。大阪は西にあります。';
    expect(splitText(cjk, 18, estimateTokens)).toEqual(['東京は日本の首都です。', '大阪は西にあります。']);
  });

  it('hard-cuts a run with no boundary without splitting surrogate pairs or combining marks', () => {
    const emoji = '🚀'.repeat(300);
    const pieces = splitText(emoji, 40, estimateTokens);
    expect(pieces.join('')).toBe(emoji);
    for (const p of pieces) {
      expect(estimateTokens(p)).toBeLessThanOrEqual(40);
      expect(p.codePointAt(0)).toBe(0x1f680);
      expect(p.length % 2).toBe(0);
    }
    const accents = 'e\u0301'.repeat(200);
    for (const p of splitText(accents, 30, estimateTokens)) expect(p.startsWith('e')).toBe(true);
    const hex = 'ab12'.repeat(2000);
    expect(splitText(hex, 100, estimateTokens).join('')).toBe(hex);
  });

  it('hard cuts keep every script\'s marks, skin tones and flags with their character; Hindi and Urdu sentence ends are sentence ends', () => {
    // Each of these was cut before a Thai, Devanagari or Arabic mark (a part starting with a
    // vowel sign or a haraka), between an emoji and its skin tone, and inside flags.
    const runs = {
      thai: 'ภาษาไทยเป็นภาษาที่มีระดับเสียงของคำแน่นอนหรือวรรณยุกต์เช่นเดียวกับภาษาจีน'.repeat(200),
      hindi: 'हिन्दीविश्वकीएकप्रमुखभाषाहैएवंभारतकीराजभाषाहै'.repeat(200),
      arabic: 'بِسْمِاللَّهِالرَّحْمَٰنِالرَّحِيمِ'.repeat(300),
      korean: '한국어는대한민국의공용어이다'.normalize('NFD').repeat(300),
      skin: '👍🏽👋🏿🤝🏻'.repeat(600),
      flags: '🇫🇷🇩🇪🇯🇵🇺🇸'.repeat(600),
    };
    for (const [name, text] of Object.entries(runs)) {
      for (const limit of [64, 65, 97, 100, 333]) {
        const pieces = splitText(text, limit, estimateTokens);
        expect(pieces.join(''), name).toBe(text);
        for (const p of pieces) {
          expect(estimateTokens(p)).toBeLessThanOrEqual(limit);
          expect(p, `${name} at ${limit}`).not.toMatch(/^[\p{M}\p{Emoji_Modifier}\u1160-\u11ff]/u);
          expect([...p].filter((c) => /\p{Regional_Indicator}/u.test(c)).length % 2, `${name} at ${limit}`).toBe(0);
        }
      }
    }
    const hindi = 'भारत एक विशाल देश है। यहाँ अनेक भाषाएँ बोली जाती हैं। हिन्दी उनमें से एक है।';
    const longest = (text: string, end: RegExp) => Math.max(...text.split(end).map((t) => estimateTokens(t) + 2));
    expect(splitText(hindi, longest(hindi, /।/), estimateTokens).length).toBeGreaterThan(1);
    for (const piece of splitText(hindi, longest(hindi, /।/), estimateTokens)) expect(piece).toMatch(/।$/);
    const urdu = 'پاکستان ایک خوبصورت ملک ہے۔ کیا آپ وہاں گئے ہیں؟ اردو قومی زبان ہے۔';
    expect(splitText(urdu, longest(urdu, /[۔؟]/), estimateTokens).length).toBeGreaterThan(1);
    for (const piece of splitText(urdu, longest(urdu, /[۔؟]/), estimateTokens)) expect(piece).toMatch(/[۔؟]$/);
  });

  it('a run with nowhere to cut (only combining marks, joiners or selectors) is cut by the budget, not a character a part', () => {
    for (const text of ['a' + '\u0301'.repeat(40_000), '\u200d'.repeat(40_000), '\ufe0f'.repeat(40_000), '🚀' + '\u0301'.repeat(40_000)]) {
      const pieces = splitText(text, 1000, estimateTokens);
      expect(pieces.join('')).toBe(text);
      for (const p of pieces) expect(estimateTokens(p)).toBeLessThanOrEqual(1000);
      // 40 000 units at about 2.2 tokens each make some 90 parts of 1000 tokens; one unit a part made 40 000.
      expect(pieces.length).toBeLessThan(120);
      expect(pieces.every((p) => !/^[\udc00-\udfff]|[\ud800-\udbff]$/.test(p))).toBe(true);
      const chunks = chunkMessages([msg('m', text)], opts(3500));
      expect(chunks.length).toBeLessThan(40);
    }
  });

  it('overlap: trailing whole messages of the previous chunk, never in messageIds, within the budget', () => {
    const messages = Array.from({ length: 40 }, (_, k) => msg(`m${k}`, sampleText(k % 3 ? 'english' : 'chinese', k, 100 + (k % 7) * 60)));
    const chunks = chunkMessages(messages, opts(700, 300));
    expect(chunks.flatMap((c) => c.messageIds)).toEqual(messages.map((m) => m.id));
    expect(chunks.length).toBeGreaterThan(5);
    for (let k = 1; k < chunks.length; k++) {
      const c = chunks[k];
      const prev = chunks[k - 1];
      if (!c || !prev) continue;
      if (c.overlapIds.length > 0) expect(prev.messageIds.slice(-c.overlapIds.length)).toEqual(c.overlapIds);
      expect(c.tokens).toBeLessThanOrEqual(700);
    }
    expect(chunks.filter((c) => c.overlapIds.length > 0).length).toBeGreaterThanOrEqual(chunks.length / 2);
    expect(chunks[0]?.overlapIds).toEqual([]);
  });

  it('parts of a split message are never repeated as overlap', () => {
    const chunks = chunkMessages([msg('a', sampleText('english', 2, 12_000)), msg('b', 'tail')], opts(400, 200));
    for (const c of chunks) expect(c.overlapIds).not.toContain('a');
  });

  it('holds the budget for a counter that is not additive (cl100k)', () => {
    const messages = Array.from({ length: 60 }, (_, k) => msg(`m${k}`, sampleText(k % 2 ? 'code' : 'numbers', k, 50 + k * 40)));
    for (const c of chunkMessages(messages, opts(256, 64, cl100k))) expect(cl100k(c.text)).toBeLessThanOrEqual(256);
  });
});

describe('splitText on pathological text: work grows with the text, not its square', () => {
  // Each shape is one message, cut into pieces of 3,500 tokens, at two sizes (~100,000 and ~200,000
  // characters). The work asserted is the characters handed to the counter (a counter that is not
  // estimateTokens itself takes the general path; estimateTokens' own path must cut the same
  // pieces). Was, for a run of blank lines: the piece's count was taken of its trimmed text ('x'),
  // its text grew with every unit and was concatenated and trimmed again every thousand units or
  // so (1M newlines: 4.7 s, 2M: 13 s; the square of the run: bench/split-text.ts), and the last
  // unit was added on that small count: a piece of 66,004 tokens for a budget of 3,500.
  const shapes: Record<string, (n: number) => string> = {
    'blank lines': (n) => `x${'\n'.repeat(n)}y`,
    'lines of one space': (n) => `x${' \n'.repeat(n / 2)}y`,
    'one-letter lines': (n) => 'a\n'.repeat(n / 2),
    'one-character sentences (CJK)': (n) => '。'.repeat(n),
    'blank lines between words': (n) => 'word\n\n\n\n\n\n\n\n\n\n'.repeat(n / 14),
  };
  for (const [name, shape] of Object.entries(shapes)) {
    it(`${name}: pieces within the budget; twice the text, about twice the work (at most 32 characters counted a character); estimateTokens' path cuts the same pieces`, () => {
      const work = (text: string): { seen: number; pieces: string[] } => {
        let seen = 0;
        const counted = (t: string): number => {
          seen += t.length;
          return estimateTokens(t);
        };
        const pieces = splitText(text, 3500, counted);
        return { seen, pieces };
      };
      const small = shape(100_000);
      const large = shape(200_000);
      const a = work(small);
      const b = work(large);
      expect(b.seen / a.seen).toBeLessThan(2.5);
      expect(b.seen / large.length).toBeLessThan(32);
      for (const p of b.pieces) expect(estimateTokens(p)).toBeLessThanOrEqual(3500);
      expect(splitText(large, 3500, estimateTokens)).toEqual(b.pieces);
    });
  }

  it('TokenTally: appending counts as estimateTokens counts the whole', () => {
    const parts = ['Hello', ' ', 'world', '123', '4', '  ', '\n', '\n', '東京', '🚀', 'camelCase', ''];
    const tally = new TokenTally();
    let whole = '';
    for (const p of parts) {
      tally.add(`[${p}]`, 1, p.length + 1);
      whole += p;
      expect(tally.tokens).toBe(estimateTokens(whole));
    }
  });
});
