import { countTokens as o200k } from 'gpt-tokenizer/encoding/o200k_base';
import { countTokens as cl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { describe, expect, it } from 'vitest';
import { estimateTokens } from '../../src/ingest/tokens.ts';
import { SAMPLE_KINDS, sampleText } from '../../bench/lib/text-corpus.ts';

describe('estimateTokens', () => {
  it('is at least the o200k_base and cl100k_base count on every sample of every kind, long and short', () => {
    const failures: string[] = [];
    for (const kind of SAMPLE_KINDS) {
      for (let seed = 1; seed <= 4; seed++) {
        for (const size of [3000, 300, 20]) {
          const text = sampleText(kind, seed * 1009 + size, size);
          const real = Math.max(o200k(text), cl100k(text));
          const est = estimateTokens(text);
          if (est < real) failures.push(`${kind} seed ${seed} size ${size}: estimate ${est} < real ${real}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('is not wildly above on English prose (within 1.6× of either tokenizer)', () => {
    let est = 0;
    let o = 0;
    let c = 0;
    for (let seed = 1; seed <= 6; seed++) {
      const text = sampleText('english', seed, 4000);
      est += estimateTokens(text);
      o += o200k(text);
      c += cl100k(text);
    }
    expect(est / o).toBeLessThan(1.6);
    expect(est / c).toBeLessThan(1.6);
    expect(est / Math.max(o, c)).toBeGreaterThan(1);
  });

  it('handles the edges: empty, lone surrogates, astral characters, huge whitespace runs', () => {
    expect(estimateTokens('')).toBe(0);
    expect(estimateTokens('a')).toBeGreaterThanOrEqual(1);
    for (const s of ['\ud800', '\udc00x', '𝕏𝕐ℤ', ' '.repeat(10_000), '\n'.repeat(5000), '\u200d'.repeat(50)]) {
      expect(estimateTokens(s)).toBeGreaterThanOrEqual(Math.max(o200k(s), cl100k(s)));
    }
  });

  it('runs in linear time, fast', () => {
    const text = sampleText('chat-mix', 3, 2_000_000);
    estimateTokens(text); // warm up
    const t0 = performance.now();
    for (let k = 0; k < 5; k++) estimateTokens(text);
    const mbps = (5 * Buffer.byteLength(text)) / 1e6 / ((performance.now() - t0) / 1000);
    // Measured 150–300 MB/s; the bound only catches an accidental regex-per-character or quadratic
    // slip, with a wide margin for a shared, loaded 2-core machine.
    expect(mbps).toBeGreaterThan(20);
  });
});
