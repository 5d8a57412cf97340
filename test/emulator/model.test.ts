/**
 * The pieces under the HTTP layer: the engine's scheduler (chunked prefill, death, abort), the
 * deterministic reply text, token counts, and the best-rate formula.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Engine, type SeqInit, type SeqResult } from '../../src/emulator/engine.ts';
import { estimateBestRate } from '../../src/emulator/index.ts';
import { FAULT_DEFAULTS, TIMING_DEFAULTS, type Faults, type Timing } from '../../src/emulator/options.ts';
import { describeText, naturalLength, replyHeader, replyText } from '../../src/emulator/reply.ts';
import { countText } from '../../src/emulator/tokens.ts';

function engine(timing: Partial<Timing> = {}, faults: Partial<Faults> = {}, limits = { maxNumSeqs: 8, maxNumBatchedTokens: 2048, kvCacheTokens: 100_000 }) {
  let ooms = 0;
  const e = new Engine(limits, {
    timing: () => ({ ...TIMING_DEFAULTS, ...timing }),
    faults: () => ({ ...FAULT_DEFAULTS, ...faults }),
    onOom: () => void ooms++,
  });
  return { e, ooms: () => ooms };
}

function seq(overrides: Partial<SeqInit> = {}): { init: SeqInit; done: Promise<SeqResult> } {
  let init!: SeqInit;
  const done = new Promise<SeqResult>((resolve, reject) => {
    init = { promptTokens: 10, images: 0, outputTokens: 5, finishReason: 'stop', hung: false, onDone: resolve, onFail: (why) => reject(new Error(why)), ...overrides };
  });
  return { init, done };
}

describe('engine scheduler', () => {
  it('prefills a long prompt in chunks of maxNumBatchedTokens: the first token comes after 3 steps', async () => {
    // Steps of 10 ms (base) plus 0.002 ms per prefilled token; speed 1.
    const { e } = engine({ stepBaseMs: 10, stepPerSeqMs: 0, prefillPerTokenMs: 0.002 });
    const s = seq({ promptTokens: 5000, outputTokens: 3 });
    e.submit(s.init);
    const r = await s.done;
    expect(r.generated).toBe(3);
    // 3 prefill steps (2048 + 2048 + 904 tokens: ~10 ms + ~4 ms each) then 2 decode steps of 10 ms.
    expect(r.ttftSec).toBeGreaterThan(0.035);
    expect(r.ttftSec).toBeLessThan(0.2);
    expect(r.e2eSec - r.ttftSec).toBeGreaterThan(0.018);
    expect(e.counters.promptTokens).toBe(5000);
    expect(e.counters.generationTokens).toBe(3);
  });

  it('die() fails every sequence, waiting or running, and later submits fail too', async () => {
    const { e } = engine({ speed: 10 }, {}, { maxNumSeqs: 1, maxNumBatchedTokens: 64, kvCacheTokens: 1000 });
    const a = seq({ outputTokens: 1000 });
    const b = seq();
    e.submit(a.init);
    e.submit(b.init);
    await new Promise((r) => setTimeout(r, 20));
    expect(e.gauges()).toMatchObject({ running: 1, waiting: 1 });
    e.die();
    await expect(a.done).rejects.toThrow('dead');
    await expect(b.done).rejects.toThrow('dead');
    const c = seq();
    e.submit(c.init);
    await expect(c.done).rejects.toThrow('dead');
  });

  it('death-mode OOM calls onOom when too many image sequences would run', async () => {
    const { e, ooms } = engine({ speed: 10 }, { oomAtConcurrentImages: 1 });
    const a = seq({ images: 1, outputTokens: 100 });
    const b = seq({ images: 2, outputTokens: 100 });
    e.submit(a.init);
    e.submit(b.init);
    await expect(a.done).rejects.toThrow('dead');
    await expect(b.done).rejects.toThrow('dead');
    expect(ooms()).toBe(1);
    expect(e.dead).toBe(true);
  });

  it('abort() frees the slot without a callback and counts an abort', async () => {
    const { e } = engine({ speed: 10 }, {}, { maxNumSeqs: 1, maxNumBatchedTokens: 64, kvCacheTokens: 1000 });
    let called = false;
    const h = e.submit({ ...seq().init, outputTokens: 10_000, onDone: () => (called = true), onFail: () => (called = true) });
    const b = seq({ outputTokens: 2 });
    e.submit(b.init);
    h.abort();
    h.abort();
    await b.done;
    expect(called).toBe(false);
    expect(e.counters.success.abort).toBe(1);
    expect(e.gauges()).toMatchObject({ running: 0, waiting: 0, kvUsage: 0 });
  });
});

describe('replies', () => {
  it('filler words are one token each, so the reply has about as many tokens as generated', () => {
    const header = replyHeader('m', { lastImages: [], lastText: 'some text here' });
    const seed = Buffer.alloc(32, 7);
    for (const n of [50, 200, 450]) {
      const text = replyText(header, seed, n);
      expect(Math.abs(countText(text) - n)).toBeLessThanOrEqual(3);
    }
    expect(replyText(header, seed, 3)).toBe(header);
  });

  it('counts a 100 kB run without spaces quickly (BPE is quadratic in one run)', () => {
    const t0 = performance.now();
    expect(countText('='.repeat(100_000))).toBeGreaterThan(1000);
    expect(countText(`start ${'a'.repeat(600)} end`)).toBeGreaterThan(70);
    expect(performance.now() - t0).toBeLessThan(1500);
  });

  it('describes empty and unicode text', () => {
    expect(describeText('')).toBe('text: words=0 sha256=e3b0c44298fc1c14 first="" last=""');
    expect(describeText(' héllo\tworld  ✓ ')).toMatch(/^text: words=3 sha256=[0-9a-f]{16} first="héllo world ✓" last="héllo world ✓"$/);
  });

  it('output lengths are uniform-ish over [min, max]', () => {
    const lengths = Array.from({ length: 2000 }, (_, i) => naturalLength(createHash('sha256').update(`seed ${i}`).digest(), 150, 450));
    expect(Math.min(...lengths)).toBeGreaterThanOrEqual(150);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(450);
    const mean = lengths.reduce((a, b) => a + b, 0) / lengths.length;
    expect(mean).toBeGreaterThan(270);
    expect(mean).toBeLessThan(330);
  });
});

describe('best rate', () => {
  it('follows the formula and names its limit', () => {
    const low = estimateBestRate({}, { promptTokens: 500, outputTokens: 300, concurrency: 1 });
    expect(low.stepMs).toBeCloseTo((20 + 0.2 + 0.05 * (500 / 300)) / 1, 5);
    expect(low.generatedTokensPerSec).toBeCloseTo(1000 / low.stepMs, 5);
    const best = estimateBestRate({}, { promptTokens: 500, outputTokens: 300 });
    expect(best.limitedBy).toBe('maxNumSeqs');
    expect(best.running).toBe(256);
    const pages = estimateBestRate({}, { promptTokens: 2000, outputTokens: 300 });
    expect(pages.limitedBy).toBe('kvCache');
    expect(estimateBestRate({ speed: 10 }, { promptTokens: 2000, outputTokens: 300 }).generatedTokensPerSec).toBeCloseTo(pages.generatedTokensPerSec * 10, 3);
  });
});
