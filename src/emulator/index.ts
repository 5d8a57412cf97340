/**
 * An emulated vLLM OpenAI-compatible server, for the demo, the tests and the benchmarks.
 * It behaves toward a client as ../../../shared/reference/vllm-api.md describes; docs/emulator.md
 * explains the timing model and the faults.
 *
 *     const engine = await startEmulator({ speed: 20 });
 *     // ... point the client at engine.url ...
 *     await engine.close();
 */
import type { AnswerRecord } from './answers.ts';
import type { EmulatorStats } from './context.ts';
import { resolveOptions, type EmulatorOptions, type Faults, type Timing } from './options.ts';
import { EmulatorServer } from './server.ts';

export type { RateLimit, RejectRule, FlawKind } from './answer-options.ts';
export type { AnswerCounts, AnswerRecord } from './answers.ts';
export type { EmulatorStats, EngineState } from './context.ts';
export type { FieldRecord } from './extract.ts';
export type { RateWindowStats } from './rate-limit.ts';
export { ERROR_KINDS, type ErrorKind } from './errors.ts';
export {
  EMULATOR_DEFAULTS,
  ENGINE_PROFILES,
  FAULT_DEFAULTS,
  SERVER_PRESETS,
  TIMING_DEFAULTS,
  type Admission,
  type EmulatorOptions,
  type EngineProfile,
  type ErrorStyle,
  type Faults,
  type HangRule,
  type OomMode,
  type ServerPreset,
  type Timing,
} from './options.ts';
export { estimateBestRate, type BestRate, type Workload } from './rate.ts';

export interface Emulator {
  /** e.g. `http://127.0.0.1:43121` (no trailing slash); the same after engine restarts. */
  readonly url: string;
  readonly port: number;
  /** Changes fault modes now (a partial update; bad values throw a TypeError and change nothing). */
  setFaults(faults: Partial<Faults>): void;
  /** Changes timing now (a partial update; bad values throw a TypeError and change nothing). */
  setTiming(timing: Partial<Timing>): void;
  /** The fault modes and timing in force. */
  faults(): Faults;
  timing(): Timing;
  /** Engine death now, as if out of memory (no-op while already dead or down). */
  kill(): void;
  /** Counters over the emulator's whole life (across restarts). */
  stats(): EmulatorStats;
  /** The latest answers (up to 10 000) that had a first-sight flaw or structured-output fields, oldest first. */
  answers(): AnswerRecord[];
  /** Resets maxRunning, maxRunningImages and maxWaiting to the current values. */
  resetPeaks(): void;
  /** Stops listening, destroys open sockets, clears every timer. Idempotent. */
  close(): Promise<void>;
}

/** Starts an emulator and resolves once it listens. Bad options throw a TypeError naming the option. */
export async function startEmulator(options: Partial<EmulatorOptions> = {}): Promise<Emulator> {
  const server = new EmulatorServer(resolveOptions(options));
  await server.listen();
  return {
    get url() {
      return server.url;
    },
    get port() {
      return server.port;
    },
    setFaults: (f) => server.setFaults(f),
    setTiming: (t) => server.setTiming(t),
    faults: () => server.faults(),
    timing: () => server.timing(),
    kill: () => server.kill(),
    stats: () => server.stats(),
    answers: () => server.answers(),
    resetPeaks: () => server.resetPeaks(),
    close: () => server.close(),
  };
}
