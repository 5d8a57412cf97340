/** Options of the window controller (window.ts), their defaults, and their checks. */

export interface WindowOptions {
  /** Window at start. Clamped into [min, max]. @defaultValue 16 */
  initial?: number;
  /** @defaultValue 1 */
  min?: number;
  /** The configurable upper bound (MAX_IN_FLIGHT). @defaultValue 256 */
  max?: number;
  /** After an OOM, +1 per this long without another OOM. @defaultValue 30_000 */
  cleanIntervalMs?: number;
  /** Within 10% of the remembered failing size, steps are this many times slower. @defaultValue 4 */
  nearCeilingFactor?: number;
  /** Time spent just below the failing size before stepping onto it again; doubles per repeat, up to 8×. @defaultValue 300_000 */
  ceilingHoldMs?: number;
  /** Least time between two growth or hold decisions from /metrics or latency. @defaultValue 2_000 */
  decisionIntervalMs?: number;
  /** The same while probing (the engine has shown room at every decision so far). @defaultValue 1_000 */
  probeIntervalMs?: number;
  /**
   * Requests of ours we aim to keep queued at the engine (our FIFO share of `waiting`), so the
   * GPU always has the next request at hand; at least, for 3% of the engine's running count is
   * aimed at when larger. With k workers the engine queue settles near k × that. @defaultValue 2
   */
  targetWaiting?: number;
  /** Multiplicative growth per decision while probing. @defaultValue 2 */
  growthFactor?: number;
  /** Multiplicative decrease on a busy answer or climbing latency (a queue cuts by its own size). @defaultValue 0.75 */
  decreaseFactor?: number;
  /** Fast growth (probing) comes back only this long after the last OOM. @defaultValue 10 × cleanIntervalMs */
  probeAfterOomMs?: number;
  /** KV cache use above which the window does not grow (when given). @defaultValue 0.95 */
  kvHighWater?: number;
  /** Latency rule: grow while the median is at most this × the best. @defaultValue 1.5 */
  latencyGrowBelow?: number;
  /** Latency rule: shrink when the median is above this × the best. @defaultValue 3 */
  latencyBackoffAbove?: number;
  /** Completions per latency decision. @defaultValue 8 */
  latencySamples?: number;
  /** A failing size remembered from an earlier run (e.g. kept in Redis). @defaultValue null */
  ceiling?: number | null;
}

export type ResolvedWindowOptions = Required<Omit<WindowOptions, 'ceiling'>>;

/** Spreads the defaults once and checks every value: a bad one throws a TypeError naming it. */
export function resolveWindowOptions(options: WindowOptions): ResolvedWindowOptions {
  const clean = options.cleanIntervalMs ?? 30_000;
  const resolved: ResolvedWindowOptions = {
    initial: options.initial ?? 16,
    min: options.min ?? 1,
    max: options.max ?? 256,
    cleanIntervalMs: clean,
    nearCeilingFactor: options.nearCeilingFactor ?? 4,
    ceilingHoldMs: options.ceilingHoldMs ?? 300_000,
    decisionIntervalMs: options.decisionIntervalMs ?? 2_000,
    probeIntervalMs: options.probeIntervalMs ?? 1_000,
    targetWaiting: options.targetWaiting ?? 2,
    growthFactor: options.growthFactor ?? 2,
    decreaseFactor: options.decreaseFactor ?? 0.75,
    probeAfterOomMs: options.probeAfterOomMs ?? 10 * clean,
    kvHighWater: options.kvHighWater ?? 0.95,
    latencyGrowBelow: options.latencyGrowBelow ?? 1.5,
    latencyBackoffAbove: options.latencyBackoffAbove ?? 3,
    latencySamples: options.latencySamples ?? 8,
  };
  validate(resolved);
  return resolved;
}

function validate(o: ResolvedWindowOptions): void {
  const int = (name: string, value: number, min: number) => {
    if (!Number.isInteger(value) || value < min) throw new TypeError(`WindowOptions.${name} must be an integer >= ${min}, got ${value}`);
  };
  const pos = (name: string, value: number) => {
    if (!Number.isFinite(value) || value < 0) throw new TypeError(`WindowOptions.${name} must be a number >= 0, got ${value}`);
  };
  int('min', o.min, 1);
  int('max', o.max, o.min);
  int('initial', o.initial, 1);
  int('latencySamples', o.latencySamples, 1);
  pos('cleanIntervalMs', o.cleanIntervalMs);
  pos('ceilingHoldMs', o.ceilingHoldMs);
  pos('decisionIntervalMs', o.decisionIntervalMs);
  pos('probeIntervalMs', o.probeIntervalMs);
  pos('targetWaiting', o.targetWaiting);
  pos('probeAfterOomMs', o.probeAfterOomMs);
  if (!(o.nearCeilingFactor >= 1)) throw new TypeError(`WindowOptions.nearCeilingFactor must be >= 1, got ${o.nearCeilingFactor}`);
  if (!(o.growthFactor > 1)) throw new TypeError(`WindowOptions.growthFactor must be > 1, got ${o.growthFactor}`);
  if (!(o.decreaseFactor > 0 && o.decreaseFactor < 1)) {
    throw new TypeError(`WindowOptions.decreaseFactor must be between 0 and 1, got ${o.decreaseFactor}`);
  }
  if (!(o.latencyGrowBelow >= 1 && o.latencyBackoffAbove > o.latencyGrowBelow)) {
    throw new TypeError(
      `WindowOptions.latencyGrowBelow (${o.latencyGrowBelow}) must be >= 1 and below latencyBackoffAbove (${o.latencyBackoffAbove})`,
    );
  }
  if (!(o.kvHighWater > 0 && o.kvHighWater <= 1)) throw new TypeError(`WindowOptions.kvHighWater must be in (0, 1], got ${o.kvHighWater}`);
}
