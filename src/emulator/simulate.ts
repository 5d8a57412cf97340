/**
 * The emulator's engine without HTTP or real time: its scheduler (engine.ts) on a virtual clock
 * (virtual-clock.ts), fed by simulated clients. A closed loop over thousands of requests takes
 * milliseconds and the same inputs give the same figures, so a benchmark can find the
 * concurrency at which the engine does best on a set of requests before measuring it for real,
 * and tests can drive a client's controller against every engine profile (test/engine/engine-sim.ts).
 *
 * Requests are (prompt tokens, output tokens) pairs; the output tokens are what the emulator will
 * generate for them (reply.ts `outputLength`, capped by max_tokens). Spans count as a benchmark
 * does from the engine's side: the first arrival to the last answer.
 */
import { Engine, type EngineLimits } from './engine.ts';
import { faultsOf, timingOf, type EmulatorOptions } from './options.ts';
import { VirtualClock } from './virtual-clock.ts';

export interface SimRequest {
  promptTokens: number;
  outputTokens: number;
}

/**
 * What a request costs on its way, in ms: the network both ways, and the emulator's own intake
 * (reading the body, parsing, tokenizing), which is one thread: requests arriving together are
 * taken in one by one, `intakeMs + intakeMsPer1kTokens` per thousand prompt tokens each.
 */
export interface SimDelays {
  sendMs: number;
  replyMs: number;
  intakeMs: number;
  intakeMsPer1kTokens: number;
}

/** Measured on the development machine: ~3 ms of intake for a 3.3k-token chat prompt. */
export const SIM_DELAYS: SimDelays = { sendMs: 1, replyMs: 1, intakeMs: 0.3, intakeMsPer1kTokens: 0.6 };

export interface SimSpan {
  /** First arrival at the engine to the last answer, ms. */
  spanMs: number;
  tokens: number;
  tokensPerSec: number;
  preemptions: number;
}

/** An engine of these options on `clock`. */
export function simEngine(options: EmulatorOptions, clock: VirtualClock): Engine {
  const limits: EngineLimits = {
    maxNumSeqs: options.maxNumSeqs,
    maxNumBatchedTokens: options.maxNumBatchedTokens,
    kvCacheTokens: options.kvCacheTokens,
    admission: options.admission,
  };
  const timing = timingOf(options);
  const faults = faultsOf(options);
  return new Engine(limits, { timing: () => timing, faults: () => faults, onOom: () => {} }, clock);
}

/** The emulator's one-thread intake: when it is free again. */
const intakeFree = new WeakMap<Engine, number>();

/** Sends `r`: after `sendMs` and its turn at the intake it reaches the engine; `done` runs `replyMs` after the answer. */
export function simSend(engine: Engine, clock: VirtualClock, delays: SimDelays, r: SimRequest, done: () => void): void {
  const cost = delays.intakeMs + (delays.intakeMsPer1kTokens * r.promptTokens) / 1000;
  const at = Math.max(clock.now() + delays.sendMs, intakeFree.get(engine) ?? 0) + cost;
  intakeFree.set(engine, at);
  clock.setTimer(() => {
    engine.submit({
      promptTokens: r.promptTokens,
      images: 0,
      outputTokens: r.outputTokens,
      finishReason: 'stop',
      hung: false,
      onDone: () => clock.setTimer(done, delays.replyMs),
      onFail: (why) => {
        throw new Error(`simulated request failed: ${why}`);
      },
    });
  }, at - clock.now());
}

/** The span of a finished simulation; checks that every token was generated. */
export function simSpan(engine: Engine, requests: readonly SimRequest[]): SimSpan {
  const spanMs = (engine.lastDoneAt ?? 0) - (engine.firstArrivalAt ?? 0);
  const tokens = requests.reduce((n, r) => n + r.outputTokens, 0);
  if (engine.counters.generationTokens !== tokens) throw new Error(`generated ${engine.counters.generationTokens} of ${tokens} tokens`);
  return { spanMs, tokens, tokensPerSec: (tokens * 1000) / spanMs, preemptions: engine.counters.preemptions };
}

/** `c` clients, each sending the next request (in order) as soon as its last one is answered. */
export function simulateClosedLoop(options: EmulatorOptions, requests: readonly SimRequest[], c: number, delays: SimDelays = SIM_DELAYS): SimSpan {
  const clock = new VirtualClock();
  const engine = simEngine(options, clock);
  let next = 0;
  let done = 0;
  const client = (): void => {
    if (next >= requests.length) return;
    simSend(engine, clock, delays, requests[next++]!, () => {
      done++;
      client();
    });
  };
  for (let i = 0; i < c; i++) client();
  clock.run(() => done === requests.length);
  return simSpan(engine, requests);
}

/**
 * The concurrency at which a closed loop finishes these requests soonest: a coarse sweep (×1.25
 * steps from 1 to 2 × maxNumSeqs), then every value between the best one's neighbours in steps
 * of ~2%. Returns the best and the sweep.
 */
export function simulateBestConcurrency(options: EmulatorOptions, requests: readonly SimRequest[], delays: SimDelays = SIM_DELAYS): { concurrency: number; best: SimSpan; sweep: [number, SimSpan][] } {
  const sweep = new Map<number, SimSpan>();
  const at = (c: number): SimSpan => {
    let s = sweep.get(c);
    if (!s) sweep.set(c, (s = simulateClosedLoop(options, requests, c, delays)));
    return s;
  };
  const coarse: number[] = [];
  for (let c = 1; c <= 2 * options.maxNumSeqs; c = Math.max(c + 1, Math.round(c * 1.25))) coarse.push(c);
  let bestIndex = 0;
  coarse.forEach((c, i) => {
    if (at(c).spanMs < at(coarse[bestIndex]!).spanMs) bestIndex = i;
  });
  const lo = coarse[Math.max(0, bestIndex - 1)]!;
  const hi = coarse[Math.min(coarse.length - 1, bestIndex + 1)]!;
  for (let c = lo; c <= hi; c = Math.max(c + 1, Math.round(c * 1.02))) at(c);
  let concurrency = coarse[bestIndex]!;
  for (const [c, s] of sweep) if (s.spanMs < at(concurrency).spanMs) concurrency = c;
  return { concurrency, best: at(concurrency), sweep: [...sweep].sort((a, b) => a[0] - b[0]) };
}
