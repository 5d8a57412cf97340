/**
 * What the route handlers see of the running emulator, and the counters it keeps for tests.
 * `stats()` counts over the emulator's whole life (across engine deaths and restarts), while
 * /metrics shows only the current engine "process", as a restarted vLLM would.
 */
import type { AnswerBook, AnswerCounts } from './answers.ts';
import type { Engine } from './engine.ts';
import { ERROR_KINDS, type ErrorKind } from './errors.ts';
import type { EmulatorOptions, Faults, Timing } from './options.ts';
import type { RateLimiter, RateWindowStats } from './rate-limit.ts';

export type EngineState =
  /** Serving. */
  | 'alive'
  /** The engine died: 500 to inference, 503 on /health; the port closes after deathExitMs (unless keepAliveOnDeath). */
  | 'dead'
  /** Not listening: connections are refused until the restart. */
  | 'down'
  /** close() was called. */
  | 'closed';

/** Counters the HTTP layer keeps; the engine's token counts are added by `stats()`. */
export interface RequestCounts {
  /** Every HTTP request, any route. */
  httpRequests: number;
  /** Inference requests received (chat, chat batch, completions), whatever became of them. */
  requests: number;
  /** Engine sequences submitted (one per conversation of a batch, one per prompt of a list). */
  sequences: number;
  /** Inference requests answered 200 (a stream counts when it ends normally). */
  completed: number;
  /** Requests answered with an error, by kind. */
  errors: Record<ErrorKind, number>;
  /** Inference requests whose client closed the connection before the answer. */
  aborted: number;
  /** Requests picked by the hang rule. */
  hung: number;
  /** Requests answered (200) without their token counts (omitUsage). */
  usageOmitted: number;
  /** Chat requests withheld by the content filter (contentFilter), answered 200 without an answer; not counted as completed. */
  filtered: number;
}

export interface EmulatorStats extends RequestCounts, AnswerCounts {
  state: EngineState;
  /** Sum of `errors`. */
  errorsTotal: number;
  /** Engine deaths (OOM in death mode, or kill()). */
  deaths: number;
  /** Times the server came back after a death. */
  restarts: number;
  /** Sequences running / waiting now, and the share of the KV cache they hold (0..1). */
  running: number;
  waiting: number;
  kvUsage: number;
  /**
   * When the first sequence reached an engine and when the last answer left one (ms on the
   * emulator's performance.now() clock), or null: a benchmark's span, first request to last.
   */
  firstArrivalMs: number | null;
  lastDoneMs: number | null;
  /** Peaks since start (or resetPeaks()), across restarts. */
  maxRunning: number;
  maxRunningImages: number;
  maxWaiting: number;
  /** Prompt tokens prefilled and tokens generated, across restarts. */
  promptTokens: number;
  generationTokens: number;
  preemptions: number;
  /** Per API key, model and window of the rateLimit fault: accepted and refused requests and tokens, oldest first. */
  rateLimitWindows: RateWindowStats[];
}

export function newRequestCounts(): RequestCounts {
  return {
    httpRequests: 0,
    requests: 0,
    sequences: 0,
    completed: 0,
    errors: Object.fromEntries(ERROR_KINDS.map((k) => [k, 0])) as Record<ErrorKind, number>,
    aborted: 0,
    hung: 0,
    usageOmitted: 0,
    filtered: 0,
  };
}

export interface ApiContext {
  readonly options: Readonly<EmulatorOptions>;
  readonly counts: RequestCounts;
  faults(): Faults;
  timing(): Timing;
  state(): EngineState;
  /** The current engine (a new one after each restart). */
  engine(): Engine;
  metricsText(): string;
  /** What was answered (first-sight flaws, fields), across restarts. */
  readonly answers: AnswerBook;
  /** Windows of the rateLimit fault, across restarts. */
  readonly rateLimiter: RateLimiter;
}
