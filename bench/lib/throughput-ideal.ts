/**
 * Where to run the engine's own best: each request as the emulator will see it (its prompt
 * tokens and the reply length it will generate, read with the emulator's own prompt.ts and
 * reply.ts, capped by max_tokens), then the emulator's scheduler in simulation
 * (src/emulator/simulate.ts) swept over concurrencies. The real closed loop then runs at the
 * simulated best and around it, and the shortest real run is the best.
 */
import { ENGINE_PROFILES, resolveOptions, timingOf, type EmulatorOptions, type EngineProfile } from '../../src/emulator/options.ts';
import { prepareChat } from '../../src/emulator/prompt.ts';
import { outputLength } from '../../src/emulator/reply.ts';
import { simulateBestConcurrency, type SimRequest, type SimSpan } from '../../src/emulator/simulate.ts';
import type { BenchRequest } from './throughput-workload.ts';

export interface IdealConcurrency {
  options: EmulatorOptions;
  requests: SimRequest[];
  concurrency: number;
  /** The simulated best run at that concurrency. */
  best: SimSpan;
  promptTokens: number;
  outputTokens: number;
}

export async function idealConcurrency(profile: EngineProfile, speed: number, requests: readonly BenchRequest[]): Promise<IdealConcurrency> {
  const options = resolveOptions({ ...ENGINE_PROFILES[profile], speed });
  const timing = timingOf(options);
  const sims: SimRequest[] = [];
  for (const r of requests) {
    const p = await prepareChat(JSON.parse(JSON.stringify(r.messages)), options);
    sims.push({ promptTokens: p.promptTokens, outputTokens: Math.min(outputLength(p.seed, timing), r.maxTokens) });
  }
  const { concurrency, best } = simulateBestConcurrency(options, sims);
  const mean = (f: (r: SimRequest) => number) => sims.reduce((n, r) => n + f(r), 0) / sims.length;
  return { options, requests: sims, concurrency, best, promptTokens: mean((r) => r.promptTokens), outputTokens: mean((r) => r.outputTokens) };
}
