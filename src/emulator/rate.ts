/**
 * The engine's best rate, from the timing model (docs/emulator.md derives it): what a closed loop
 * of `concurrency` clients sending requests of `promptTokens` in and `outputTokens` out should get
 * in steady state. Benchmarks compare what a client achieves against this.
 */
import { EMULATOR_DEFAULTS, type EmulatorOptions } from './options.ts';

export interface Workload {
  /** Prompt tokens per request (a 1288 px page is about 2 000). */
  promptTokens: number;
  /** Generated tokens per request (the default timing averages 300). */
  outputTokens: number;
  /** Requests in flight; defaults to as many as the engine can run (the best rate). */
  concurrency?: number;
}

export interface BestRate {
  /** Sequences running in steady state: min(concurrency, maxNumSeqs, token budget, KV cache). */
  running: number;
  /** What bounds `running`. */
  limitedBy: 'concurrency' | 'maxNumSeqs' | 'maxNumBatchedTokens' | 'kvCache';
  /** Prompt tokens prefilled per step, on average. */
  prefillTokensPerStep: number;
  /** Wall-clock duration of one step, in ms (speed applied). */
  stepMs: number;
  generatedTokensPerSec: number;
  requestsPerSec: number;
}

export function estimateBestRate(options: Partial<EmulatorOptions>, w: Workload): BestRate {
  const o = { ...EMULATOR_DEFAULTS, ...options };
  const p = w.promptTokens;
  const l = Math.max(1, w.outputTokens);
  // Each running sequence decodes one token a step and, averaged over its life, prefills p/l.
  const limits: [BestRate['limitedBy'], number][] = [
    ['concurrency', w.concurrency ?? Infinity],
    ['maxNumSeqs', o.maxNumSeqs],
    ['maxNumBatchedTokens', o.maxNumBatchedTokens / (1 + p / l)],
    // A sequence holds p + l/2 KV tokens on average over its life.
    ['kvCache', o.kvCacheTokens / (p + l / 2)],
  ];
  let [limitedBy, running] = limits[0] as [BestRate['limitedBy'], number];
  for (const [name, n] of limits) {
    if (n < running) [limitedBy, running] = [name, n];
  }
  running = Math.max(1, Math.floor(running));
  const prefillTokensPerStep = (running * p) / l;
  const stepMs = (o.stepBaseMs + o.stepPerSeqMs * running + o.prefillPerTokenMs * prefillTokensPerStep) / o.speed;
  const generatedTokensPerSec = (running * 1000) / stepMs;
  return { running, limitedBy, prefillTokensPerStep, stepMs, generatedTokensPerSec, requestsPerSec: generatedTokensPerSec / l };
}
