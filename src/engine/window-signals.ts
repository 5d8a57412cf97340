/**
 * What the window (window.ts) learns the engine's room from, read into the terms of its queue
 * rule (window-rule.ts) or of its latency rule. Pure: readings in, a queue signal or a decision
 * out; each source keeps only the memory its reading needs (the last `running`, the queueing
 * that is not ours, the best latency). No clock: every call carries `now`.
 *
 * /metrics (`MetricsSignal`). While fresh (within 5 decision intervals) the queue rule decides;
 * growth also needs our requests to be at the engine (`running + waiting` ≥ 75% of our in-flight
 * count: otherwise they are stuck before it, e.g. in the API server's image preprocessing) and
 * the KV cache below `kvHighWater` when given.
 *
 * Without /metrics, the answers decide. From answers of varied lengths (`AnswerQueueSignal`, on
 * window-latency.ts's reading), the share of our requests' time spent queued, times our
 * in-flight count, is our share of the engine's queue, steered by the same rule to a target of
 * max(targetWaiting, 10% of the window) (the reading is that noisy), with cuts of at most a
 * quarter. Answers show the queue a request's lifetime late, so: while probing, the window grows
 * on the clock (×growthFactor per `probeIntervalMs`, in the window's `tick`) until answers show
 * a queue; only answers to requests sent since the window last moved by a quarter (or was cut)
 * count, and until there are enough of them there is no verdict. Overshooting costs the engine
 * nothing (the excess waits in its queue) and is trimmed a lifetime later; an engine that
 * refuses load says so (429, 503: `onBusy`, OOM). Queueing that two cuts in a row did not lower
 * by a tenth is not ours (another tenant): it becomes the base that our share is counted above,
 * so the window does not shrink to nothing.
 *
 * When answers are all of one length (or come without token counts), `LatencySignal`: the
 * median latency of the last `latencySamples` answers is compared with the best seen: at most
 * `latencyGrowBelow`× the best → grow; above `latencyBackoffAbove`× → cut ×decreaseFactor;
 * between → hold. A cut must show: if two response times later the latency has not fallen by
 * 10%, the rise was not ours (denser pages, another tenant) and the best is re-based. Batching
 * engines trade latency for throughput, so this last rule stops growing while throughput would
 * still rise. Give the worker /metrics.
 * Latency is measured in one unit at a time: per output token for answers that carry their
 * count, whole (ms) for those that do not; an engine or gateway may leave `usage` out of some
 * answers only. Each unit is its own series with its own best (and its own last cut), and a
 * decision rests on the first series to hold `latencySamples` answers since the last one (the
 * per-token one when both do); both start again after it. A median of the two mixed would sit
 * anywhere between ms per token and ms, off the best by about the reply length either way.
 */

import { QueueEstimator, type QueueReading } from './window-latency.ts';
import type { ResolvedWindowOptions } from './window-options.ts';
import { HOLD_BAND, TARGET_SHARE_OF_RUNNING, type Decision, type QueueSignal } from './window-rule.ts';

/** A /metrics sample: the engine's global gauges (all workers' requests) and its preemption counter. */
export interface MetricsSample {
  running: number;
  waiting: number;
  kvCacheUsage?: number | null;
  preemptionsTotal?: number | null;
}

/** The window's numbers a signal reads: our requests in flight (null: the worker does not say) and the window. */
export interface SignalContext {
  inFlight: number | null;
  size: number;
}

/** The engine's /metrics, read into our share of its queue. */
export class MetricsSignal {
  /** `running` at the last metrics decision: a queue while it climbs is a backlog being admitted. */
  private lastRunning: number | null = null;
  /** The engine's preemption counter at the last metrics decision. */
  private lastPreemptions: number | null = null;

  private readonly targetWaiting: number;

  constructor(targetWaiting: number) {
    this.targetWaiting = targetWaiting;
  }

  /** Reads a sample taken for a decision (one per decision: it moves the baselines). */
  read(m: MetricsSample, ctx: SignalContext): { signal: QueueSignal; said: string } {
    const total = m.running + m.waiting;
    const mine = ctx.inFlight ?? ctx.size;
    // FIFO: our share of the queue is our share of what the engine holds.
    const own = total > 0 ? m.waiting * Math.min(1, mine / total) : 0;
    const before = this.lastRunning;
    this.lastRunning = m.running;
    // The engine is still admitting: a queue now is a backlog (a burst of new prompts goes in a
    // few per step, within the token budget), not a full engine.
    const climbing = before !== null && m.running > before + Math.max(2, 0.02 * before);
    // A counter that went down is a restarted engine: a new baseline, no verdict.
    const preempted = m.preemptionsTotal != null && this.lastPreemptions !== null && m.preemptionsTotal > this.lastPreemptions ? m.preemptionsTotal - this.lastPreemptions : 0;
    this.lastPreemptions = m.preemptionsTotal ?? null;
    // A few requests wait at any busy engine (arrived during a step, or waiting for their share
    // of the prefill budget); with long prompts a bigger engine needs more of them queued to keep
    // its budget full. The same for every worker (it depends on the engine, not on our window),
    // so workers still converge to equal windows.
    const target = Math.max(this.targetWaiting, TARGET_SHARE_OF_RUNNING * m.running);
    const said = `engine queue ${m.waiting} (ours ~${own.toFixed(1)}, target ${target.toFixed(1)})${climbing ? `, running ${before} → ${m.running}: still admitting` : ''}`;
    // Requests on their way in (a large body still being sent or preprocessed) are not at the
    // engine yet: its numbers say nothing about them.
    const atEngine = ctx.inFlight === null ? null : total >= 0.75 * ctx.inFlight;
    // Our share of what the engine admitted since the last decision: a backlog of ours no longer
    // than that is gone by the next one.
    const admitted = climbing && before !== null ? (m.running - before) * Math.min(1, mine / Math.max(1, total)) : 0;
    return {
      signal: { own, queued: m.waiting > 0, climbing, admitted, preempted, running: m.running, kvCacheUsage: m.kvCacheUsage ?? null, atEngine, target },
      said,
    };
  }
}

/** Our answers of varied lengths, read into our share of the engine's queue (no /metrics). */
export class AnswerQueueSignal {
  /** Recent answers, for the queue estimate. */
  private readonly queue: QueueEstimator;
  /** The share of time queued that is not ours: raised when cuts did not lower it. */
  private queuedBase = 0;
  /** Cuts in a row from answers, and the queued share when the first was made. */
  private answerCuts: { queued: number; cuts: number } | null = null;

  private readonly opts: Pick<ResolvedWindowOptions, 'latencySamples' | 'targetWaiting' | 'decreaseFactor'>;

  constructor(opts: Pick<ResolvedWindowOptions, 'latencySamples' | 'targetWaiting' | 'decreaseFactor'>) {
    this.opts = opts;
    this.queue = new QueueEstimator(4 * opts.latencySamples);
  }

  add(sentAt: number, latencyMs: number, outputTokens: number | undefined): void {
    this.queue.add({ sentAt, latencyMs, outputTokens: outputTokens ?? 0 });
  }

  /** Forgets the answers (a restarted engine). */
  clear(): void {
    this.queue.clear();
  }

  /** A reading from every recent answer, or null (too few, or lengths too alike: the latency rule decides). */
  readAll(): QueueReading | null {
    return this.queue.read(Number.NEGATIVE_INFINITY, this.opts.latencySamples);
  }

  /**
   * What the answers say now: a decision of their own (too few since the window moved, or
   * queueing that is not ours), or our share of the queue for the queue rule. `regimeAt`: when
   * the window last moved by a quarter or was cut; `responseMs`: the smoothed response time.
   */
  read(now: number, all: QueueReading, ctx: SignalContext & { regimeAt: number; responseMs: number | null }): { decision: Decision } | { signal: QueueSignal; said: string; queued: number } {
    // Answers to requests sent since the window last moved a lot (or was cut) say where it stands
    // now; older ones, where it stood. Until there are enough of the former (a request's
    // lifetime, or the queue's wait, later), there is no verdict: a cut has not shown yet.
    const recent = this.queue.read(ctx.regimeAt, this.opts.latencySamples);
    const reading = recent ?? (now - ctx.regimeAt >= 2 * (ctx.responseMs ?? 0) ? all : null);
    if (reading === null) return { decision: { action: { kind: 'wait' }, reason: 'answers: too few since the window last moved' } };
    this.queuedBase = Math.min(this.queuedBase, reading.queued);
    const mine = ctx.inFlight ?? ctx.size;
    const own = Math.max(0, reading.queued - this.queuedBase) * mine;
    // The reading is noisy by a tenth of the window either way (prefill, requests of one burst
    // queued one behind the other): steer to a queue that grows with the window, which costs the
    // engine nothing, and cut by a quarter at most, rather than risk an idle engine.
    const target = Math.max(this.opts.targetWaiting, 0.1 * ctx.size);
    const base = this.queuedBase > 0 ? ` (${(this.queuedBase * 100).toFixed(0)}% not ours)` : '';
    const said = `answers: ${(reading.queued * 100).toFixed(0)}% of the time queued${base} at steps ≤ ${reading.stepMs.toFixed(1)} ms: ours ~${own.toFixed(1)} (target ${target.toFixed(1)})`;
    // Queueing that two cuts of ours in a row did not lower by a tenth is not ours (another
    // tenant, heavier prompts): it becomes the base, so the window does not shrink to nothing.
    // (One cut is not enough: requests queued before it still delay those sent after.)
    const series = this.answerCuts;
    if (own > 2 * target && series !== null && series.cuts >= 2 && reading.queued >= 0.9 * series.queued) {
      this.queuedBase = reading.queued;
      this.answerCuts = null;
      return { decision: { action: { kind: 'hold' }, reason: `${said}: two cuts did not lower it, not ours: re-based` } };
    }
    return {
      signal: { own, queued: own > HOLD_BAND, climbing: false, admitted: 0, preempted: 0, running: null, kvCacheUsage: null, atEngine: null, target, keep: this.opts.decreaseFactor },
      said,
      queued: reading.queued,
    };
  }

  /** What the queue rule did with the last reading (`queued`): counts cuts in a row, forgets them on growth. */
  moved(queued: number, how: 'cut' | 'grew' | 'other'): void {
    const series = this.answerCuts;
    if (how === 'cut') {
      this.answerCuts = series !== null && queued >= 0.9 * series.queued ? { queued: series.queued, cuts: series.cuts + 1 } : { queued, cuts: 1 };
    } else if (how === 'grew') {
      this.answerCuts = null;
    }
  }
}

/** What latency is measured in: per output token (answers with their count), or whole. */
export type LatencyUnit = 'ms/token' | 'ms';

/** Latencies of one unit: the samples since the last decision, the best median, the last cut they made. */
export interface LatencySeries {
  readonly unit: LatencyUnit;
  samples: number[];
  best: number | null;
  cut: { at: number; median: number } | null;
}

/** Median latency against the best seen, one unit at a time (no /metrics, answers of one length). */
export class LatencySignal {
  /** Latency of answers that gave their output token count (per token), and of those that did not (whole). */
  private readonly perToken: LatencySeries = { unit: 'ms/token', samples: [], best: null, cut: null };
  private readonly whole: LatencySeries = { unit: 'ms', samples: [], best: null, cut: null };

  private readonly opts: Pick<ResolvedWindowOptions, 'latencySamples' | 'latencyGrowBelow' | 'latencyBackoffAbove' | 'decreaseFactor'>;

  constructor(opts: Pick<ResolvedWindowOptions, 'latencySamples' | 'latencyGrowBelow' | 'latencyBackoffAbove' | 'decreaseFactor'>) {
    this.opts = opts;
  }

  add(latencyMs: number, outputTokens: number | undefined): void {
    // One unit per series: an answer without its count has no latency per token.
    if (outputTokens !== undefined && outputTokens > 0) this.perToken.samples.push(latencyMs / outputTokens);
    else this.whole.samples.push(latencyMs);
  }

  /** The first series holding `latencySamples` answers (per token first), or undefined. */
  due(): LatencySeries | undefined {
    return [this.perToken, this.whole].find((s) => s.samples.length >= this.opts.latencySamples);
  }

  /** The median of `series`; both series start again. */
  take(series: LatencySeries): number {
    const median = medianOf(series.samples);
    this.clear();
    return median;
  }

  /** Forgets the samples since the last decision, not the best (a restarted engine). */
  clear(): void {
    this.perToken.samples = [];
    this.whole.samples = [];
  }

  /** The best median seen, per token when answers gave their counts. */
  get best(): { value: number; unit: LatencyUnit } | null {
    const series = this.perToken.best !== null ? this.perToken : this.whole.best !== null ? this.whole : null;
    return series === null ? null : { value: series.best!, unit: series.unit };
  }

  /** A median of `series` against its best; `responseMs`: the smoothed response time. Call `cutMade` if a cut it asks for is made. */
  judge(now: number, series: LatencySeries, median: number, responseMs: number | null): Decision {
    // A cut that did not bring the latency down (two response times later) means the rise was not
    // our doing (heavier inputs, another tenant): the best is re-based instead of cutting forever.
    if (series.cut !== null && now - series.cut.at >= 2 * (responseMs ?? 0)) {
      if (median >= 0.9 * series.cut.median) series.best = median;
      series.cut = null;
    }
    series.best = series.best === null ? median : Math.min(series.best, median);
    const ratio = median / series.best;
    if (ratio > this.opts.latencyBackoffAbove && series.cut !== null) {
      return { action: { kind: 'hold' }, reason: 'latency climbing: waiting for the last cut to show' };
    }
    if (ratio > this.opts.latencyBackoffAbove) {
      return { action: { kind: 'cut', factor: this.opts.decreaseFactor }, reason: `latency ${ratio.toFixed(1)}× the best: climbing` };
    }
    if (ratio <= this.opts.latencyGrowBelow) return { action: { kind: 'grow' }, reason: 'latency near the best' };
    return { action: { kind: 'hold' }, reason: 'latency above the best' };
  }

  /** The cut `judge` asked for was made: it must show, or the best is re-based. */
  cutMade(series: LatencySeries, now: number, median: number): void {
    series.cut = { at: now, median };
  }
}

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
