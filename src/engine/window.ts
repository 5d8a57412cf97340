/**
 * The window: how many requests this worker may have in flight at the engine. Pure: no I/O, no
 * timers, no clock — every event carries `now` (milliseconds on any monotonic clock, e.g.
 * `performance.now()`). The worker feeds it events and asks for `size` and `canSend`.
 *
 * STATES
 *
 *   probing ──(a queue at or above the target with running flat, or latency climbing)──► steady
 *   steady  ──(no queue at all for 3 decisions, no OOM for probeAfterOomMs)──► probing
 *   probing | steady | backoff ──(out of memory)──► backoff
 *   backoff ──(held the remembered failing size for a clean interval)──► steady
 *   any ──(engine down)──► paused ──(engine up)──► the state it left
 *
 * probing   Start-up. The engine has room: grow fast, ×growthFactor per decision (16 → 32 → 64
 *           ...), a decision every `probeIntervalMs` (1 s), while our share of the engine's
 *           queue is below the target and our requests are at the engine. A short queue does
 *           not end probing: at a busy engine, requests that arrived during the current step
 *           wait for the next one, so `waiting` is rarely 0 even with room. The whole ramp to
 *           256 takes about 4 s: the ramp is part of what the engine loses to a slow client.
 * steady    Near the engine's capacity, a decision every `decisionIntervalMs` (2 s): the queue
 *           rule (window-rule.ts) keeps our share of the engine's queue at a small target:
 *           none → grow, short → +1, on target → hold, long → -1, too long → cut the excess;
 *           a queue while the engine is still admitting is a backlog, not a full engine, and an
 *           engine that preempts often is over-full (-1).
 * backoff   After an out-of-memory (window-ceiling.ts). The window was halved (floor `min`)
 *           and the size that failed is remembered as a ceiling; the clean-interval clock
 *           (`tick`) grows it +1 at a time, slower near the ceiling, onto it only after a hold.
 *           Signals may still lower the window here, never raise it. Once the window has held
 *           the ceiling for a clean interval the limit was lifted: the state is steady.
 * paused    The engine is down or dead: `size` is kept, `canSend` is false, and the time spent
 *           paused is not clean time (the engine restarted; it has proven nothing yet).
 *
 * OOM EPISODES (window-ceiling.ts). The requests that fail together when the engine dies are
 * one event: one halving of the load that failed (the in-flight high-water mark when the worker
 * reports it), not one per failure. Stragglers of the last cut only count.
 *
 * SIGNALS (window-signals.ts). With fresh /metrics, our share of the engine's queue; without,
 * the same share as our answers of varied lengths show it (a request's lifetime late: probing
 * grows on the clock meanwhile, in `tick`), else their median latency against the best seen, in
 * one unit at a time (per output token, or whole when answers come without their counts).
 *
 * Growth needs the window to be used: if the worker reports its in-flight count (`setInFlight`),
 * a window that was not filled (within 10%) since it last changed does not grow.
 */

import { MemoryCeiling } from './window-ceiling.ts';
import type { QueueReading } from './window-latency.ts';
import { resolveWindowOptions, type ResolvedWindowOptions, type WindowOptions } from './window-options.ts';
import { queueRule, type Action, type Decision, type QueueSignal } from './window-rule.ts';
import { AnswerQueueSignal, LatencySignal, MetricsSignal, type LatencySeries, type LatencyUnit, type MetricsSample } from './window-signals.ts';

export type { WindowOptions } from './window-options.ts';
export type { LatencyUnit, MetricsSample } from './window-signals.ts';

export type WindowState = 'probing' | 'steady' | 'backoff' | 'paused';

export interface WindowChange {
  at: number;
  from: number;
  to: number;
  reason: string;
}

/** A read-only picture for metrics and logs. */
export interface WindowSnapshot {
  size: number;
  state: WindowState;
  canSend: boolean;
  /** The remembered failing size, or null. */
  ceiling: number | null;
  /** OOM episodes (halvings). */
  ooms: number;
  /** Every `onOom` call, including those folded into an episode. */
  oomReports: number;
  inFlight: number | null;
  /** Best median latency seen, in `bestLatencyUnit` (per output token when answers gave their counts), or null. */
  bestLatency: number | null;
  bestLatencyUnit: LatencyUnit | null;
  lastChange: WindowChange | null;
}

/** What a metrics sample or a latency window says about the engine's room. */
type Verdict = 'grow' | 'hold' | 'shrink';

export class WindowController {
  private readonly opts: ResolvedWindowOptions;
  private current: number;
  private phase: Exclude<WindowState, 'paused'> = 'probing';
  private paused = false;
  /** What the engine's memory allows: OOM episodes, the failing size, the clean-interval clock. */
  private readonly memory: MemoryCeiling;
  private lastChangeAt = Number.NEGATIVE_INFINITY;
  private lastDecisionAt = Number.NEGATIVE_INFINITY;
  private lastDecreaseAt = Number.NEGATIVE_INFINITY;
  private growStreak = 0;
  private lastVerdict: Verdict | null = null;
  private lastVerdictAt = Number.NEGATIVE_INFINITY;
  private lastMetricsAt = Number.NEGATIVE_INFINITY;
  private inFlight: number | null = null;
  private peak = 0;
  private latencyEwma: number | null = null;
  /** What the engine's /metrics say; without them, what our answers say (their queueing, their latency). */
  private readonly metrics: MetricsSignal;
  private readonly answers: AnswerQueueSignal;
  private readonly latency: LatencySignal;
  /** When the window last moved by a quarter or more (answers to requests sent since show it). */
  private regimeAt = Number.NEGATIVE_INFINITY;
  private change: WindowChange | null = null;

  constructor(options: WindowOptions = {}) {
    this.opts = resolveWindowOptions(options);
    this.metrics = new MetricsSignal(this.opts.targetWaiting);
    this.answers = new AnswerQueueSignal(this.opts);
    this.latency = new LatencySignal(this.opts);
    this.current = Math.min(this.opts.max, Math.max(this.opts.min, this.opts.initial));
    this.memory = new MemoryCeiling(this.opts, options.ceiling ?? null);
    if (this.memory.ceiling !== null) this.phase = 'backoff';
  }

  /** Requests allowed in flight. */
  get size(): number {
    return this.current;
  }

  get state(): WindowState {
    return this.paused ? 'paused' : this.phase;
  }

  /** False while paused (engine down): send nothing, whatever the size. */
  get canSend(): boolean {
    return !this.paused;
  }

  get ceiling(): number | null {
    return this.memory.ceiling;
  }

  snapshot(): WindowSnapshot {
    return {
      size: this.current,
      state: this.state,
      canSend: this.canSend,
      ceiling: this.memory.ceiling,
      ooms: this.memory.episodes,
      oomReports: this.memory.reports,
      inFlight: this.inFlight,
      bestLatency: this.latency.best?.value ?? null,
      bestLatencyUnit: this.latency.best?.unit ?? null,
      lastChange: this.change ? { ...this.change } : null,
    };
  }

  /** How many of this worker's requests are at the engine now; call on every send and finish. */
  setInFlight(count: number): void {
    this.inFlight = Math.max(0, count);
    this.peak = Math.max(this.peak, this.inFlight);
  }

  /**
   * The engine ran out of memory (ENGINE_OOM, or a death: `err.engineDead`). Call it before the
   * failed request's slot is released, so the in-flight count still shows the load that failed.
   * `sentAt`, when known, is when the failed request was sent.
   */
  onOom(now: number, sentAt?: number): void {
    // The load that failed: the window, or fewer if the worker had not filled it.
    const load = this.inFlight === null ? this.current : Math.max(1, Math.min(this.current, this.peak));
    if (!this.memory.oom(now, sentAt, this.paused, load)) return;
    this.growStreak = 0;
    this.phase = 'backoff';
    this.set(now, Math.floor(load / 2), 'out of memory: halved');
  }

  /** Requests find the engine down or dead: stop sending, keep the size. */
  onEngineDown(now: number): void {
    if (this.paused) return;
    this.paused = true;
    this.note(now, 'engine down: paused');
  }

  /** /health answers again. */
  onEngineUp(now: number): void {
    if (!this.paused) return;
    this.paused = false;
    // A restarted engine is a new engine: its next death is a new out-of-memory event.
    this.memory.engineUp(now);
    this.latency.clear();
    this.answers.clear();
    this.note(now, 'engine up: resumed');
  }

  /** The engine said it is overloaded (429, "server busy"); a timeout is worth reporting here too. */
  onBusy(now: number): void {
    if (this.phase === 'probing') this.phase = 'steady';
    this.growStreak = 0;
    this.decrease(now, 'engine busy', { factor: this.opts.decreaseFactor });
  }

  /** A request succeeded after `latencyMs`; `outputTokens` makes the latency rules work per token. */
  onCompleted(now: number, latencyMs: number, outputTokens?: number): void {
    const sentAt = now - latencyMs;
    this.memory.answered(sentAt, this.paused);
    this.latencyEwma = this.latencyEwma === null ? latencyMs : 0.8 * this.latencyEwma + 0.2 * latencyMs;
    if (this.paused || this.metricsFresh(now)) return;
    this.answers.add(sentAt, latencyMs, outputTokens);
    this.latency.add(latencyMs, outputTokens);
    const series = this.latency.due();
    if (series === undefined || now - this.lastDecisionAt < this.interval()) return;
    const median = this.latency.take(series);
    const reading = this.answers.readAll();
    if (reading) this.steerByAnswers(now, reading);
    else this.steerByLatency(now, series, median);
  }

  /** A /metrics sample: the engine's global `running` and `waiting` (all workers' requests), its KV cache use and preemption counter when it exports them. */
  onMetrics(now: number, m: MetricsSample): void {
    this.lastMetricsAt = now;
    if (this.paused || now - this.lastDecisionAt < this.interval()) return;
    const { signal, said } = this.metrics.read(m, { inFlight: this.inFlight, size: this.current });
    this.steer(now, signal, said);
  }

  /** Without /metrics, from answers of varied lengths: our share of the engine's queue, steered like `waiting`. */
  private steerByAnswers(now: number, all: QueueReading): void {
    const read = this.answers.read(now, all, { inFlight: this.inFlight, size: this.current, regimeAt: this.regimeAt, responseMs: this.latencyEwma });
    if ('decision' in read) {
      this.decide(now, read.decision.action, read.decision.reason);
      return;
    }
    const before = this.current;
    this.steer(now, read.signal, read.said);
    const how = this.current < before && this.change?.reason.endsWith('cut') ? 'cut' : this.current > before ? 'grew' : 'other';
    this.answers.moved(read.queued, how);
  }

  /** Without /metrics or varied lengths: a median latency against the best seen in its unit. */
  private steerByLatency(now: number, series: LatencySeries, median: number): void {
    const { action, reason } = this.latency.judge(now, series, median, this.latencyEwma);
    if (this.decide(now, action, reason) && action.kind === 'cut') this.latency.cutMade(series, now, median);
  }

  /** The queue rule (window-rule.ts), whatever saw the queue. */
  private steer(now: number, signal: QueueSignal, said: string): void {
    const { action, reason }: Decision = queueRule(signal, { probing: this.phase === 'probing', size: this.current, mine: this.inFlight ?? this.current, targetWaiting: this.opts.targetWaiting, kvHighWater: this.opts.kvHighWater }, said);
    this.decide(now, action, reason);
  }

  /** Time passes: growth after an OOM, and forgetting a ceiling that was lifted. Call every second or so. */
  tick(now: number): void {
    if (this.paused) return;
    if (this.phase === 'probing' && !this.metricsFresh(now) && now - this.lastChangeAt >= this.opts.probeIntervalMs && this.current < this.opts.max && this.saturated()) {
      // No /metrics: answers show a queue only a request's lifetime late. Until they do, grow on
      // the clock as if the engine had room; the first answers that show a queue end probing and
      // cut the excess (a queue costs the engine nothing meanwhile).
      this.set(now, Math.max(this.current + 1, Math.ceil(this.current * this.opts.growthFactor)), 'no /metrics, no queue in the answers yet: probing');
      return;
    }
    if (this.phase !== 'backoff' || this.memory.inEpisode) return;
    if (this.memory.lifted(now, this.current, () => this.saturated())) {
      this.phase = 'steady';
      this.note(now, `held ${this.current} without OOM: ceiling lifted`);
      return;
    }
    if (this.current >= this.opts.max || !this.saturated()) return;
    if (this.recentVerdict(now) === 'shrink' || this.recentVerdict(now) === 'hold') return;
    const target = this.current + 1;
    if (now - Math.max(this.memory.cleanSince, this.lastChangeAt) < this.memory.waitFor(target)) return;
    this.set(now, target, target >= (this.memory.ceiling ?? Infinity) ? 'clean interval: probing the ceiling' : 'clean interval: +1', true);
  }

  // ---- internals ----

  /** Applies a decision; true when the window changed. */
  private decide(now: number, action: Action, reason: string): boolean {
    this.lastDecisionAt = now;
    this.lastVerdictAt = now;
    // 'wait' changes nothing, the phase included: the engine has not said yet where it stands.
    if (action.kind === 'wait') return false;
    this.lastVerdict = action.kind === 'grow' || action.kind === 'short' ? 'grow' : action.kind === 'hold' ? 'hold' : 'shrink';
    // Only an empty queue counts toward probing again; a short one at the target is noise.
    if (action.kind !== 'grow') this.growStreak = 0;
    if (action.kind !== 'grow' && action.kind !== 'short' && this.phase === 'probing') this.phase = 'steady';
    switch (action.kind) {
      case 'cut':
        return this.decrease(now, reason, action);
      case 'down1':
        return this.set(now, this.current - 1, `${reason}: -1`);
      case 'hold':
        return false;
      case 'grow':
      case 'short':
        break;
    }
    if (action.kind === 'grow') this.growStreak++;
    // After an OOM only the clean-interval clock (tick) raises the window.
    if (this.phase === 'backoff' || !this.saturated() || this.current >= this.opts.max) return false;
    if (this.phase === 'steady' && this.growStreak >= 3 && this.memory.mayProbe(now)) this.phase = 'probing';
    if (this.phase === 'probing') {
      const next = Math.max(this.current + 1, Math.ceil(this.current * this.opts.growthFactor));
      return this.set(now, next, `${reason}: probing`);
    }
    return this.set(now, this.current + 1, `${reason}: +1`);
  }

  /** Least time between two decisions: short while probing (the engine has shown room). */
  private interval(): number {
    return this.phase === 'probing' ? this.opts.probeIntervalMs : this.opts.decisionIntervalMs;
  }

  /** A cut (to a size, or by a factor), at least 1 and at most halving (or to `keep` × the window), once per response time. */
  private decrease(now: number, reason: string, how: { to?: number; factor?: number; keep?: number }): boolean {
    // Requests already sent keep the queue up until they finish: give a cut time to show.
    const responseTime = Math.min(30_000, Math.max(this.opts.decisionIntervalMs, this.latencyEwma ?? 0));
    if (now - this.lastDecreaseAt < responseTime) return false;
    const wanted = how.to ?? Math.floor(this.current * (how.factor ?? this.opts.decreaseFactor));
    const next = Math.min(this.current - 1, Math.max(Math.floor(this.current * (how.keep ?? 0.5)), wanted));
    if (!this.set(now, next, `${reason}: cut`)) return false;
    this.lastDecreaseAt = now;
    this.regimeAt = now;
    return true;
  }

  private metricsFresh(now: number): boolean {
    return now - this.lastMetricsAt <= 5 * this.opts.decisionIntervalMs;
  }

  private recentVerdict(now: number): Verdict | null {
    return now - this.lastVerdictAt <= 5 * this.opts.decisionIntervalMs ? this.lastVerdict : null;
  }

  /** Was the window (nearly) filled since it last changed? True when the worker does not say. */
  private saturated(): boolean {
    if (this.inFlight === null) return true;
    return this.peak >= this.current - Math.floor(this.current * 0.1);
  }

  private set(now: number, size: number, reason: string, ontoCeiling = false): boolean {
    // Growth never jumps onto a remembered failing size: only the backoff clock steps onto it.
    const to = this.memory.cap(this.current, Math.min(this.opts.max, Math.max(this.opts.min, size)), ontoCeiling);
    if (to === this.current) return false;
    this.change = { at: now, from: this.current, to, reason };
    if (Math.abs(to - this.current) >= 0.25 * this.current) this.regimeAt = now;
    this.current = to;
    this.lastChangeAt = now;
    this.peak = this.inFlight ?? 0;
    this.memory.moved(to);
    return true;
  }

  private note(now: number, reason: string): void {
    this.change = { at: now, from: this.current, to: this.current, reason };
  }
}
