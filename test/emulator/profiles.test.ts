/**
 * Engine profiles and the scheduler on a virtual clock: the two admission rules (vLLM's token
 * budget, and everything at once up to maxNumSeqs), mixed reply lengths, the `--profile` presets,
 * the engine's span (first arrival, last answer), and the closed-loop simulation benchmarks use
 * to find the engine's ideal concurrency. Pure: no HTTP, no real time.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Engine, type SeqInit } from '../../src/emulator/engine.ts';
import { optionsFromFlags } from '../../src/emulator/flags.ts';
import { estimateBestRate } from '../../src/emulator/index.ts';
import { ENGINE_PROFILES, FAULT_DEFAULTS, mergeTiming, resolveOptions, TIMING_DEFAULTS, type Admission } from '../../src/emulator/options.ts';
import { outputLength } from '../../src/emulator/reply.ts';
import { simulateBestConcurrency, simulateClosedLoop } from '../../src/emulator/simulate.ts';
import { VirtualClock } from '../../src/emulator/virtual-clock.ts';

function virtualEngine(admission: Admission, limits = { maxNumSeqs: 8, maxNumBatchedTokens: 2048, kvCacheTokens: 1_000_000 }) {
  const clock = new VirtualClock();
  const engine = new Engine({ ...limits, admission }, { timing: () => TIMING_DEFAULTS, faults: () => FAULT_DEFAULTS, onOom: () => {} }, clock);
  return { clock, engine };
}

function seq(promptTokens: number, outputTokens: number, done: () => void = () => {}): SeqInit {
  return { promptTokens, images: 0, outputTokens, finishReason: 'stop', hung: false, onDone: done, onFail: (why) => { throw new Error(why); } };
}

describe('virtual clock', () => {
  it('runs timers in time order, same-time ones in the order set; cleared ones never', () => {
    const clock = new VirtualClock();
    const seen: string[] = [];
    clock.setTimer(() => seen.push('b@10'), 10);
    const gone = clock.setTimer(() => seen.push('never'), 5);
    clock.setTimer(() => {
      seen.push('a@0');
      clock.defer(() => seen.push('deferred@0'));
    }, 0);
    clock.setTimer(() => seen.push('c@10'), 10);
    clock.clearTimer(gone);
    expect(clock.run()).toBe(10);
    expect(seen).toEqual(['a@0', 'deferred@0', 'b@10', 'c@10']);
  });

  it('stops at `until` without running later timers', () => {
    const clock = new VirtualClock();
    let ran = false;
    clock.setTimer(() => (ran = true), 100);
    expect(clock.run(() => false, 50)).toBe(50);
    expect(ran).toBe(false);
    clock.run();
    expect(ran).toBe(true);
  });
});

describe('admission', () => {
  it("'budget' (vLLM): long prompts go in a few per step, the rest wait meanwhile", () => {
    const { clock, engine } = virtualEngine('budget', { maxNumSeqs: 64, maxNumBatchedTokens: 2048, kvCacheTokens: 1_000_000 });
    for (let i = 0; i < 20; i++) engine.submit(seq(3000, 50));
    // The first submit started a step alone (122.6 ms: 2048 tokens of its prompt); the second
    // step finishes its prompt (952) and admits one more with the budget left.
    clock.run(() => false, 150);
    expect(engine.gauges()).toMatchObject({ running: 2, waiting: 18 });
  });

  it("'all': every request up to maxNumSeqs runs at once, nothing waits until then", () => {
    const { clock, engine } = virtualEngine('all', { maxNumSeqs: 64, maxNumBatchedTokens: 2048, kvCacheTokens: 1_000_000 });
    for (let i = 0; i < 20; i++) engine.submit(seq(3000, 50));
    // The first submit started a step alone; the next step admits the 19 that came meanwhile.
    clock.run(() => false, 150);
    expect(engine.gauges()).toMatchObject({ running: 20, waiting: 0 });
    for (let i = 0; i < 60; i++) engine.submit(seq(3000, 50));
    clock.run(() => false, 2000);
    expect(engine.gauges()).toMatchObject({ running: 64, waiting: 16 });
    // Prefill still shares the budget: all 80 finish, the prompt tokens all counted.
    clock.run();
    expect(engine.counters.promptTokens).toBe(80 * 3000);
    expect(engine.counters.generationTokens).toBe(80 * 50);
  });

  it("'all' still holds the KV cache: past it, requests wait", () => {
    const { clock, engine } = virtualEngine('all', { maxNumSeqs: 64, maxNumBatchedTokens: 2048, kvCacheTokens: 10_000 });
    for (let i = 0; i < 5; i++) engine.submit(seq(3000, 50));
    clock.run(() => false, 150);
    expect(engine.gauges()).toMatchObject({ running: 3, waiting: 2 });
  });

  it('records the span: first arrival to last answer', () => {
    const { clock, engine } = virtualEngine('budget');
    clock.setTimer(() => engine.submit(seq(100, 10)), 500);
    clock.setTimer(() => engine.submit(seq(100, 20)), 700);
    clock.run();
    expect(engine.firstArrivalAt).toBe(500);
    expect(engine.lastDoneAt).toBe(clock.now());
    expect(engine.lastDoneAt! - engine.firstArrivalAt!).toBeGreaterThan(200 + 20 * 20);
  });
});

describe('mixed reply lengths', () => {
  it('a share of the replies is long, the rest short', () => {
    const timing = mergeTiming(TIMING_DEFAULTS, { outputTokensMin: 20, outputTokensMax: 200, longOutputShare: 0.25, longOutputTokensMin: 1000, longOutputTokensMax: 2000 });
    const lengths = Array.from({ length: 4000 }, (_, i) => outputLength(createHash('sha256').update(`seed ${i}`).digest(), timing));
    const long = lengths.filter((l) => l >= 1000);
    expect(lengths.every((l) => (l >= 20 && l <= 200) || (l >= 1000 && l <= 2000))).toBe(true);
    expect(long.length / lengths.length).toBeGreaterThan(0.22);
    expect(long.length / lengths.length).toBeLessThan(0.28);
    // Share 0 is the plain uniform range, as before.
    const plain = Array.from({ length: 100 }, (_, i) => outputLength(createHash('sha256').update(`p ${i}`).digest(), TIMING_DEFAULTS));
    expect(plain.every((l) => l >= 150 && l <= 450)).toBe(true);
  });

  it('rejects a share outside [0, 1] and a long range upside down, naming the option', () => {
    expect(() => mergeTiming(TIMING_DEFAULTS, { longOutputShare: 1.5 })).toThrow(/longOutputShare/);
    expect(() => mergeTiming(TIMING_DEFAULTS, { longOutputTokensMin: 3000 })).toThrow(/longOutputTokensMax/);
  });
});

describe('profiles', () => {
  it('--profile applies first, then --like, then every other flag', () => {
    const o = optionsFromFlags({ profile: 'admit-all', 'max-num-seqs': '128' });
    expect([o.admission, o.maxNumSeqs, o.maxNumBatchedTokens]).toEqual(['all', 128, 8192]);
    expect(optionsFromFlags({ profile: 'no-metrics' }).noMetrics).toBe(true);
    expect(optionsFromFlags({ admission: 'all' }).admission).toBe('all');
    expect(() => optionsFromFlags({ profile: 'tgi' })).toThrow(/--profile must be one of/);
    expect(() => resolveOptions({ admission: 'some' as Admission })).toThrow(/admission/);
  });

  it('every profile is a valid set of options', () => {
    for (const profile of Object.values(ENGINE_PROFILES)) expect(() => resolveOptions(profile)).not.toThrow();
  });
});

describe('closed-loop simulation', () => {
  const requests = Array.from({ length: 400 }, (_, i) => ({ promptTokens: 2000, outputTokens: 200 + (i % 5) * 50 }));

  it('matches the best-rate formula within a few percent in steady state', () => {
    const options = resolveOptions({ speed: 4 });
    const model = estimateBestRate(options, { promptTokens: 2000, outputTokens: 300, concurrency: 32 });
    const run = simulateClosedLoop(options, requests, 32);
    // The ramp (32 prompts at once) and the tail are in the span: a little below the formula.
    expect(run.tokensPerSec / model.generatedTokensPerSec).toBeGreaterThan(0.85);
    expect(run.tokensPerSec / model.generatedTokensPerSec).toBeLessThan(1.05);
  });

  it('finds the KV limit as the ideal concurrency of a KV-bound engine, and all seats of an admit-all one', () => {
    const kv = simulateBestConcurrency(resolveOptions({ ...ENGINE_PROFILES['kv-preempt'], speed: 4 }), requests);
    // 131072 tokens of KV hold ~57 sequences of 2000 + 300 / 2.
    expect(kv.concurrency).toBeGreaterThan(40);
    expect(kv.concurrency).toBeLessThan(90);
    const all = simulateBestConcurrency(resolveOptions({ ...ENGINE_PROFILES['admit-all'], speed: 4 }), requests);
    expect(all.concurrency).toBeGreaterThanOrEqual(256);
    // Past the ideal, more clients buy nothing.
    const at = (c: number) => all.sweep.find(([x]) => x === c)?.[1].spanMs ?? NaN;
    expect(at(all.sweep.at(-1)![0]) / all.best.spanMs).toBeLessThan(1.02);
  });
});
