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
 * steady    Near the engine's capacity, a decision every `decisionIntervalMs` (2 s). Keep a
 *           little queue at the engine so the GPU always has the next request at hand, but not
 *           a big one. Our share of the queue (FIFO: our share of what the engine holds,
 *           `waiting × ours / (running + waiting)`) is held at a target, max(`targetWaiting`,
 *           3% of the engine's running: a bigger engine with long prompts needs more queued
 *           to keep its prefill budget busy; the same for every worker): 0 queued →
 *           grow; below target → +1; on target (±0.25) → hold; above → -1; above twice the
 *           target → cut by the excess at once (at most halving, at most once per response
 *           time: a smaller window drains the queue only as requests finish). The excess is
 *           taken off what is in flight, not off the window, so requests still queued above an
 *           earlier cut are not counted twice.
 *           A queue while the engine's `running` climbs (since the last decision) is a backlog
 *           being admitted (a burst of new prompts goes in a few per step, within the token
 *           budget), not a full engine: with our share of it at the target or more, nothing
 *           changes, the phase included, until `running` stops climbing; a smaller share
 *           counts as room, and so does, while probing, a backlog of ours no longer than what
 *           the engine admitted of ours since the last decision (it will be gone by the next:
 *           waiting for it would let the engine's admission run dry). An engine that preempts (its KV cache cannot hold the running
 *           sequences as they grow, so it evicts and later recomputes the newest) is at the
 *           cache's edge: no growth; preempting max(2, 2% of running) since the last decision, it
 *           is over-full: -1, as for a queue a little long, until it stops.
 * backoff   After an out-of-memory. The window was halved (floor `min`) and the size that
 *           failed is remembered as a ceiling. Growth is +1 per clean interval (no OOM for
 *           `cleanIntervalMs`), ×nearCeilingFactor slower within 10% of the ceiling, and the
 *           step onto the ceiling itself comes only after sitting just below it for
 *           `ceilingHoldMs`; each OOM at or above the remembered ceiling doubles that hold (up
 *           to 8×), so a hard limit is probed ever more rarely. Signals may still lower the
 *           window here, never raise it. Once the window has held the ceiling for a clean
 *           interval, with that many requests in flight, the limit was lifted: the ceiling is
 *           forgotten and the state is steady.
 * paused    The engine is down or dead: `size` is kept, `canSend` is false, and the time spent
 *           paused is not clean time (the engine restarted; it has proven nothing yet).
 *
 * OOM EPISODES. When vLLM's engine dies every request in flight fails together: that is one
 * event. An episode opens on the first `onOom` and closes when the engine is up and a request
 * *sent after the episode began* succeeds (its send time is `now - latencyMs`). An `onOom` for a
 * request sent before the last halving (`sentAt`) is a straggler of that cut, not news; one sent
 * after it halves again, inside the episode or not (an engine that answers OOM and stays up,
 * `--oom-mode request`, fails everything the halved window sends when that still does not fit,
 * and no success would ever close the episode); one whose send time is unknown, or that comes
 * inside an episode while the engine is known down (paused), only counts. The size halved is the load that failed (the in-flight
 * high-water mark when the worker reports it), and a request that fails alone sets no ceiling:
 * it is too big by itself, which says nothing about concurrency.
 *
 * SIGNALS. With /metrics (fresh within 5 decision intervals) the queue rule above decides;
 * growth also needs our requests to be at the engine (`running + waiting` ≥ 75% of our in-flight
 * count: otherwise they are stuck before it, e.g. in the API server's image preprocessing) and
 * the KV cache below `kvHighWater` when given.
 *
 * Without /metrics, the answers decide (window-latency.ts): from answers of varied lengths, the
 * share of our requests' time spent queued, times our in-flight count, is our share of the
 * engine's queue, steered by the same rule to a target of max(targetWaiting, 10% of the window)
 * (the reading is that noisy), with cuts of at most a quarter. Answers show the queue a
 * request's lifetime late, so: while probing, the window grows on the clock (×growthFactor per
 * `probeIntervalMs`, in `tick`) until answers show a queue; only answers to requests sent since
 * the window last moved by a quarter (or was cut) count, and until there are enough of them
 * there is no verdict. Overshooting costs the engine nothing (the excess waits in its queue) and
 * is trimmed a lifetime later; an engine that refuses load says so (429, 503: `onBusy`, OOM).
 * Queueing that two cuts in a row did not lower by a tenth is not ours (another tenant): it
 * becomes the base that our share is counted above, so the window does not shrink to nothing.
 * When answers are all of one length (or come without token counts), the median latency of the
 * last `latencySamples` answers is compared with the best seen: at most `latencyGrowBelow`× the
 * best → grow; above `latencyBackoffAbove`× → cut ×decreaseFactor; between → hold. A cut must
 * show: if two response times later the latency has not fallen by 10%, the rise was not ours
 * (denser pages, another tenant) and the best is re-based. Batching engines trade latency for
 * throughput, so this last rule stops growing while throughput would still rise. Give the
 * worker /metrics.
 * Latency is measured in one unit at a time: per output token for answers that carry their
 * count, whole (ms) for those that do not; an engine or gateway may leave `usage` out of some
 * answers only. Each unit is its own series with its own best (and its own last cut), and a
 * decision rests on the first series to hold `latencySamples` answers since the last one (the
 * per-token one when both do); both start again after it. A median of the two mixed would sit
 * anywhere between ms per token and ms, off the best by about the reply length either way.
 *
 * Growth needs the window to be used: if the worker reports its in-flight count (`setInFlight`),
 * a window that was not filled (within 10%) since it last changed does not grow.
 *
 * MANY WORKERS, ONE ENGINE. `waiting` and latency are global: every worker sees the same numbers.
 * Each one steers its own *share* of the queue to the same target, so a worker with a larger
 * window (a larger share) trims while a smaller one grows: they converge to equal windows (to
 * within the ±0.25 hold band) and the engine queue settles near workers × the target. Nobody
 * tries to "win back" the queue, and one big cut by every worker removes exactly the excess.
 */

import { QueueEstimator, type QueueReading } from './window-latency.ts';
import { resolveWindowOptions, type ResolvedWindowOptions, type WindowOptions } from './window-options.ts';

export type { WindowOptions } from './window-options.ts';

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

/** What latency is measured in: per output token (answers with their count), or whole. */
export type LatencyUnit = 'ms/token' | 'ms';

/** Latencies of one unit: the samples since the last decision, the best median, the last cut they made. */
interface LatencySeries {
  readonly unit: LatencyUnit;
  samples: number[];
  best: number | null;
  cut: { at: number; median: number } | null;
}

/** What a metrics sample or a latency window says about the engine's room. */
type Verdict = 'grow' | 'hold' | 'shrink';

/**
 * What a decision does: grow (no queue: by phase), short (a queue below the target: by phase
 * while probing, else +1), -1, hold, wait (no verdict), or cut (to a size, or by a factor).
 */
type Action =
  | { kind: 'grow' }
  | { kind: 'short' }
  | { kind: 'hold' }
  | { kind: 'wait' }
  | { kind: 'down1' }
  | { kind: 'cut'; to?: number; factor?: number; keep?: number };

const MAX_HOLD_FACTOR = 8;
/**
 * How far our share of the queue may sit from the target before a ±1 step. Narrow on purpose:
 * workers whose shares sit anywhere in the band stop moving, so its width bounds how unequal
 * their windows can stay ((target + band) / (target - band): 1.3× at the default target).
 */
const HOLD_BAND = 0.25;
/** Our share of the engine's queue is steered to max(targetWaiting, this × the engine's running). */
const TARGET_SHARE_OF_RUNNING = 0.03;

export class WindowController {
  private readonly opts: ResolvedWindowOptions;
  private current: number;
  private phase: Exclude<WindowState, 'paused'> = 'probing';
  private paused = false;
  private ceilingSize: number | null;
  private hold: number;
  private episodeStart: number | null = null;
  private lastOomAt: number | null = null;
  private cleanSince = Number.NEGATIVE_INFINITY;
  private lastChangeAt = Number.NEGATIVE_INFINITY;
  private lastDecisionAt = Number.NEGATIVE_INFINITY;
  private lastDecreaseAt = Number.NEGATIVE_INFINITY;
  private atCeilingSince: number | null = null;
  private growStreak = 0;
  private lastVerdict: Verdict | null = null;
  private lastVerdictAt = Number.NEGATIVE_INFINITY;
  private lastMetricsAt = Number.NEGATIVE_INFINITY;
  /** `running` at the last metrics decision: a queue while it climbs is a backlog being admitted. */
  private lastRunning: number | null = null;
  /** The engine's preemption counter at the last metrics decision. */
  private lastPreemptions: number | null = null;
  private inFlight: number | null = null;
  private peak = 0;
  private latencyEwma: number | null = null;
  /** Latency of answers that gave their output token count (per token), and of those that did not (whole). */
  private readonly perToken: LatencySeries = { unit: 'ms/token', samples: [], best: null, cut: null };
  private readonly whole: LatencySeries = { unit: 'ms', samples: [], best: null, cut: null };
  /** Recent answers, for the queue estimate without /metrics. */
  private readonly queue: QueueEstimator;
  /** The share of time queued that is not ours (no /metrics): raised when cuts did not lower it. */
  private queuedBase = 0;
  /** Cuts in a row from answers, and the queued share when the first was made. */
  private answerCuts: { queued: number; cuts: number } | null = null;
  /** When the window last moved by a quarter or more (answers to requests sent since show it). */
  private regimeAt = Number.NEGATIVE_INFINITY;
  private oomEpisodes = 0;
  private oomCalls = 0;
  private change: WindowChange | null = null;

  constructor(options: WindowOptions = {}) {
    this.opts = resolveWindowOptions(options);
    this.queue = new QueueEstimator(4 * this.opts.latencySamples);
    this.current = Math.min(this.opts.max, Math.max(this.opts.min, this.opts.initial));
    const ceiling = options.ceiling ?? null;
    if (ceiling !== null && (!Number.isInteger(ceiling) || ceiling < 2)) {
      throw new TypeError(`WindowOptions.ceiling must be an integer >= 2 or null, got ${ceiling}`);
    }
    this.ceilingSize = ceiling;
    this.hold = this.opts.ceilingHoldMs;
    if (this.ceilingSize !== null) this.phase = 'backoff';
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
    return this.ceilingSize;
  }

  snapshot(): WindowSnapshot {
    return {
      size: this.current,
      state: this.state,
      canSend: this.canSend,
      ceiling: this.ceilingSize,
      ooms: this.oomEpisodes,
      oomReports: this.oomCalls,
      inFlight: this.inFlight,
      bestLatency: this.perToken.best ?? this.whole.best,
      bestLatencyUnit: this.perToken.best !== null ? 'ms/token' : this.whole.best !== null ? 'ms' : null,
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
    this.oomCalls++;
    // A straggler of the last cut (sent before it) is not news; nor, inside an episode, is a
    // failure while the engine is known down (a request that waited on a rate limiter may be
    // sent into the outage). A death the health check saw first (paused, no episode) still is.
    if (this.paused && this.episodeStart !== null) return;
    if (sentAt !== undefined && this.lastOomAt !== null && sentAt < this.lastOomAt) return;
    // Inside an open episode, only a request known to be sent after the last cut is: the halved
    // window failed too (an engine that answers OOM and stays up never closes the episode).
    if (this.episodeStart !== null && sentAt === undefined) return;
    this.oomEpisodes++;
    // The load that failed: the window, or fewer if the worker had not filled it.
    const failed = this.inFlight === null ? this.current : Math.max(1, Math.min(this.current, this.peak));
    // Alone, a request that runs out of memory says nothing about concurrency (it is too big).
    if (failed > 1) {
      if (this.ceilingSize !== null && failed >= this.ceilingSize) {
        this.hold = Math.min(this.hold * 2, this.opts.ceilingHoldMs * MAX_HOLD_FACTOR);
      }
      this.ceilingSize = failed;
    }
    this.episodeStart = now;
    this.lastOomAt = now;
    this.cleanSince = now;
    this.atCeilingSince = null;
    this.growStreak = 0;
    this.phase = 'backoff';
    this.set(now, Math.floor(failed / 2), 'out of memory: halved');
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
    // A restarted engine is a new engine: its next death is a new out-of-memory event, even
    // if no request has succeeded since the last one (else a window that still kills it would
    // never halve again). Failures of requests sent before the last halving stay ignored (sentAt).
    this.episodeStart = null;
    this.cleanSince = now;
    this.perToken.samples = [];
    this.whole.samples = [];
    this.queue.clear();
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
    if (this.episodeStart !== null && !this.paused && sentAt >= this.episodeStart) this.episodeStart = null;
    this.latencyEwma = this.latencyEwma === null ? latencyMs : 0.8 * this.latencyEwma + 0.2 * latencyMs;
    if (this.paused || this.metricsFresh(now)) return;
    this.queue.add({ sentAt, latencyMs, outputTokens: outputTokens ?? 0 });
    // One unit per series: an answer without its count has no latency per token.
    if (outputTokens !== undefined && outputTokens > 0) this.perToken.samples.push(latencyMs / outputTokens);
    else this.whole.samples.push(latencyMs);
    const series = [this.perToken, this.whole].find((s) => s.samples.length >= this.opts.latencySamples);
    if (series === undefined || now - this.lastDecisionAt < this.interval()) return;
    const median = medianOf(series.samples);
    this.perToken.samples = [];
    this.whole.samples = [];
    const reading = this.queue.read(Number.NEGATIVE_INFINITY, this.opts.latencySamples);
    if (reading) this.steerByAnswers(now, reading);
    else this.steerByLatency(now, series, median);
  }

  /**
   * Without /metrics, from answers of varied lengths: the share of our requests' time spent
   * queued (window-latency.ts) times our in-flight count is our share of the engine's queue,
   * steered like `waiting` (`steer`).
   */
  private steerByAnswers(now: number, all: QueueReading): void {
    // Answers to requests sent since the window last moved a lot (or was cut) say where it stands
    // now; older ones, where it stood. Until there are enough of the former (a request's
    // lifetime, or the queue's wait, later), there is no verdict: a cut has not shown yet.
    const recent = this.queue.read(this.regimeAt, this.opts.latencySamples);
    const reading = recent ?? (now - this.regimeAt >= 2 * (this.latencyEwma ?? 0) ? all : null);
    if (reading === null) {
      this.decide(now, { kind: 'wait' }, 'answers: too few since the window last moved');
      return;
    }
    this.queuedBase = Math.min(this.queuedBase, reading.queued);
    const mine = this.inFlight ?? this.current;
    const own = Math.max(0, reading.queued - this.queuedBase) * mine;
    // The reading is noisy by a tenth of the window either way (prefill, requests of one burst
    // queued one behind the other): steer to a queue that grows with the window, which costs the
    // engine nothing, and cut by a quarter at most, rather than risk an idle engine.
    const target = Math.max(this.opts.targetWaiting, 0.1 * this.current);
    const base = this.queuedBase > 0 ? ` (${(this.queuedBase * 100).toFixed(0)}% not ours)` : '';
    const said = `answers: ${(reading.queued * 100).toFixed(0)}% of the time queued${base} at steps ≤ ${reading.stepMs.toFixed(1)} ms: ours ~${own.toFixed(1)} (target ${target.toFixed(1)})`;
    // Queueing that two cuts of ours in a row did not lower by a tenth is not ours (another
    // tenant, heavier prompts): it becomes the base, so the window does not shrink to nothing.
    // (One cut is not enough: requests queued before it still delay those sent after.)
    const series = this.answerCuts;
    if (own > 2 * target && series !== null && series.cuts >= 2 && reading.queued >= 0.9 * series.queued) {
      this.queuedBase = reading.queued;
      this.answerCuts = null;
      this.decide(now, { kind: 'hold' }, `${said}: two cuts did not lower it, not ours: re-based`);
      return;
    }
    const before = this.current;
    this.steer(now, { own, queued: own > HOLD_BAND, climbing: false, admitted: 0, preempted: 0, running: null, kvCacheUsage: null, atEngine: null, target, keep: this.opts.decreaseFactor }, said);
    if (this.current < before && this.change?.reason.endsWith('cut')) {
      this.answerCuts = series !== null && reading.queued >= 0.9 * series.queued ? { queued: series.queued, cuts: series.cuts + 1 } : { queued: reading.queued, cuts: 1 };
    } else if (this.current > before) {
      this.answerCuts = null;
    }
  }

  /** Without /metrics or varied lengths: a median latency against the best seen in its unit. */
  private steerByLatency(now: number, series: LatencySeries, median: number): void {
    // A cut that did not bring the latency down (two response times later) means the rise was not
    // our doing (heavier inputs, another tenant): the best is re-based instead of cutting forever.
    if (series.cut !== null && now - series.cut.at >= 2 * (this.latencyEwma ?? 0)) {
      if (median >= 0.9 * series.cut.median) series.best = median;
      series.cut = null;
    }
    series.best = series.best === null ? median : Math.min(series.best, median);
    const ratio = median / series.best;
    if (ratio > this.opts.latencyBackoffAbove && series.cut !== null) {
      this.decide(now, { kind: 'hold' }, 'latency climbing: waiting for the last cut to show');
    } else if (ratio > this.opts.latencyBackoffAbove) {
      if (this.decide(now, { kind: 'cut', factor: this.opts.decreaseFactor }, `latency ${ratio.toFixed(1)}× the best: climbing`)) {
        series.cut = { at: now, median };
      }
    } else if (ratio <= this.opts.latencyGrowBelow) {
      this.decide(now, { kind: 'grow' }, 'latency near the best');
    } else {
      this.decide(now, { kind: 'hold' }, 'latency above the best');
    }
  }

  /**
   * A /metrics sample: the engine's global `running` and `waiting` (all workers' requests), its KV
   * cache use and its preemption counter (`vllm:num_preemptions_total`) when it exports them.
   */
  onMetrics(now: number, m: { running: number; waiting: number; kvCacheUsage?: number | null; preemptionsTotal?: number | null }): void {
    this.lastMetricsAt = now;
    if (this.paused || now - this.lastDecisionAt < this.interval()) return;
    const total = m.running + m.waiting;
    const mine = this.inFlight ?? this.current;
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
    const said = `engine queue ${m.waiting} (ours ~${own.toFixed(1)}, target ${Math.max(this.opts.targetWaiting, TARGET_SHARE_OF_RUNNING * m.running).toFixed(1)})${climbing ? `, running ${before} → ${m.running}: still admitting` : ''}`;
    // Requests on their way in (a large body still being sent or preprocessed) are not at the
    // engine yet: its numbers say nothing about them.
    const atEngine = this.inFlight === null ? null : total >= 0.75 * this.inFlight;
    // Our share of what the engine admitted since the last decision: a backlog of ours no longer
    // than that is gone by the next one.
    const admitted = climbing && before !== null ? (m.running - before) * Math.min(1, mine / Math.max(1, total)) : 0;
    // A few requests wait at any busy engine (arrived during a step, or waiting for their share
    // of the prefill budget); with long prompts a bigger engine needs more of them queued to keep
    // its budget full. The same for every worker (it depends on the engine, not on our window),
    // so workers still converge to equal windows.
    const target = Math.max(this.opts.targetWaiting, TARGET_SHARE_OF_RUNNING * m.running);
    this.steer(now, { own, queued: m.waiting > 0, climbing, admitted, preempted, running: m.running, kvCacheUsage: m.kvCacheUsage ?? null, atEngine, target }, said);
  }

  /**
   * The queue rule, whatever saw the queue (/metrics, or the time our answers spent queued):
   * steer our share of the engine's queue to the target.
   */
  private steer(
    now: number,
    s: {
      own: number;
      queued: boolean;
      climbing: boolean;
      /** Of ours, how many the engine admitted since the last decision (while climbing). */
      admitted: number;
      /** Preemptions since the last decision, and the engine's running count. */
      preempted: number;
      running: number | null;
      kvCacheUsage: number | null;
      atEngine: boolean | null;
      target?: number;
      keep?: number;
    },
    said: string,
  ): void {
    const target = s.target ?? this.opts.targetWaiting;
    const mine = this.inFlight ?? this.current;
    const { own, climbing } = s;
    // A preemption now and then is the KV cache at its edge, where the engine does best; many
    // (2% of the running ones per decision) are a cache over-full, evicting and recomputing.
    const preempted = s.preempted >= Math.max(2, 0.02 * (s.running ?? 0));
    // A queue while running climbs is a backlog being admitted: no reason to shrink or to leave
    // probing; a small share of it is no reason not to grow either.
    const full = s.queued && !climbing;
    if (s.queued && climbing && own >= target - HOLD_BAND && (this.phase !== 'probing' || own > s.admitted)) {
      // A backlog the engine will not have admitted by the next decision: wait for it. While
      // probing, a shorter one is room (else the engine's admission would run dry meanwhile).
      this.decide(now, { kind: 'wait' }, said);
    } else if (full && own > 2 * target && mine - (own - target) >= this.current) {
      // The excess is counted against what is in flight, not the window: after a cut, the
      // requests above the new window stay queued until they finish, and cutting the window by
      // them again would count one excess twice.
      this.decide(now, { kind: 'hold' }, `${said}: too long, but the last cut has not shown yet`);
    } else if (full && own > 2 * target) {
      this.decide(now, { kind: 'cut', to: Math.round(mine - (own - target)), ...(s.keep ? { keep: s.keep } : {}) }, `${said}: too long`);
    } else if ((preempted || (full && own > target + HOLD_BAND)) && mine > this.current) {
      this.decide(now, { kind: 'hold' }, `${preempted ? 'engine preempting' : `${said}: a little long`}, but the last cut has not shown yet`);
    } else if (preempted) {
      // More running than the KV cache holds as they grow: the newest are evicted and their
      // prompt and output computed again. Those requests cost the engine work and add nothing;
      // step back until it stops (the window then sits just below the KV limit).
      this.decide(now, { kind: 'down1' }, 'engine preempting: KV cache over-full');
    } else if (full && own > target + HOLD_BAND) {
      this.decide(now, { kind: 'down1' }, `${said}: a little long`);
    } else if (full && own >= target - HOLD_BAND) {
      this.decide(now, { kind: 'hold' }, `${said}: on target`);
    } else if (s.kvCacheUsage != null && s.kvCacheUsage > this.opts.kvHighWater) {
      this.decide(now, { kind: 'hold' }, 'KV cache nearly full');
    } else if (s.preempted > 0) {
      this.decide(now, { kind: 'hold' }, `engine preempted ${s.preempted}: at the KV cache's edge`);
    } else if (s.atEngine === false) {
      // Do not grow on numbers that do not include our requests, but do not leave probing either.
      this.decide(now, { kind: 'wait' }, 'our requests are not reaching the engine');
    } else {
      // No queue, or our share of it below the target: room. Probing grows by its factor (a
      // short queue at a busy engine is requests that arrived during a step, not a full one).
      this.decide(now, { kind: s.queued ? 'short' : 'grow' }, `${said}: ${s.queued ? 'short' : 'room'}`);
    }
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
    if (this.phase !== 'backoff' || this.episodeStart !== null) return;
    const ceiling = this.ceilingSize;
    if (ceiling !== null && this.current >= ceiling) {
      this.atCeilingSince ??= now;
      if (now - Math.max(this.atCeilingSince, this.cleanSince) >= this.opts.cleanIntervalMs && this.saturated()) {
        this.ceilingSize = null;
        this.hold = this.opts.ceilingHoldMs;
        this.atCeilingSince = null;
        this.phase = 'steady';
        this.note(now, `held ${this.current} without OOM: ceiling lifted`);
        return;
      }
    }
    if (this.current >= this.opts.max || !this.saturated()) return;
    if (this.recentVerdict(now) === 'shrink' || this.recentVerdict(now) === 'hold') return;
    const target = this.current + 1;
    let wait = this.opts.cleanIntervalMs;
    if (ceiling !== null && target >= ceiling) wait = Math.max(wait, this.hold);
    else if (ceiling !== null && target >= 0.9 * ceiling) wait *= this.opts.nearCeilingFactor;
    if (now - Math.max(this.cleanSince, this.lastChangeAt) < wait) return;
    this.set(now, target, target >= (ceiling ?? Infinity) ? 'clean interval: probing the ceiling' : 'clean interval: +1', true);
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
    if (this.phase === 'steady' && this.growStreak >= 3 && this.mayProbe(now)) this.phase = 'probing';
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

  private mayProbe(now: number): boolean {
    return this.ceilingSize === null && (this.lastOomAt === null || now - this.lastOomAt >= this.opts.probeAfterOomMs);
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
    let to = Math.min(this.opts.max, Math.max(this.opts.min, size));
    const ceiling = this.ceilingSize;
    // Growth never jumps onto a remembered failing size: only the backoff clock steps onto it.
    if (to > this.current && ceiling !== null && to >= ceiling && !ontoCeiling) {
      to = Math.max(this.current, ceiling - 1);
    }
    if (to === this.current) return false;
    this.change = { at: now, from: this.current, to, reason };
    if (Math.abs(to - this.current) >= 0.25 * this.current) this.regimeAt = now;
    this.current = to;
    this.lastChangeAt = now;
    this.peak = this.inFlight ?? 0;
    if (ceiling === null || to < ceiling) this.atCeilingSince = null;
    return true;
  }

  private note(now: number, reason: string): void {
    this.change = { at: now, from: this.current, to: this.current, reason };
  }
}

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
