/**
 * The queue rule of the window (window.ts): from what a signal says of the engine's queue (its
 * /metrics, or the time our answers spent queued: window-signals.ts) to what the window does.
 * Pure: a reading and the window's own numbers in, an action and its reason out.
 *
 * Keep a little queue at the engine so the GPU always has the next request at hand, but not a
 * big one. Our share of the queue (FIFO: our share of what the engine holds,
 * `waiting × ours / (running + waiting)`) is held at a target, max(`targetWaiting`, 3% of the
 * engine's running: a bigger engine with long prompts needs more queued to keep its prefill
 * budget busy; the same for every worker): 0 queued → grow; below target → +1 (by the phase's
 * factor while probing); on target (±0.25) → hold; above → -1; above twice the target → cut by
 * the excess at once (at most halving, at most once per response time: a smaller window drains
 * the queue only as requests finish). The excess is taken off what is in flight, not off the
 * window, so requests still queued above an earlier cut are not counted twice.
 *
 * A queue while the engine's `running` climbs (since the last decision) is a backlog being
 * admitted (a burst of new prompts goes in a few per step, within the token budget), not a full
 * engine: with our share of it at the target or more, nothing changes, the phase included, until
 * `running` stops climbing; a smaller share counts as room, and so does, while probing, a backlog
 * of ours no longer than what the engine admitted of ours since the last decision (it will be
 * gone by the next: waiting for it would let the engine's admission run dry). An engine that
 * preempts (its KV cache cannot hold the running sequences as they grow, so it evicts and later
 * recomputes the newest) is at the cache's edge: no growth; preempting max(2, 2% of running)
 * since the last decision, it is over-full: -1, as for a queue a little long, until it stops.
 *
 * MANY WORKERS, ONE ENGINE. `waiting` and latency are global: every worker sees the same numbers.
 * Each one steers its own *share* of the queue to the same target, so a worker with a larger
 * window (a larger share) trims while a smaller one grows: they converge to equal windows (to
 * within the ±0.25 hold band) and the engine queue settles near workers × the target. Nobody
 * tries to "win back" the queue, and one big cut by every worker removes exactly the excess.
 */

/**
 * What a decision does: grow (no queue: by phase), short (a queue below the target: by phase
 * while probing, else +1), -1, hold, wait (no verdict), or cut (to a size, or by a factor).
 */
export type Action =
  | { kind: 'grow' }
  | { kind: 'short' }
  | { kind: 'hold' }
  | { kind: 'wait' }
  | { kind: 'down1' }
  | { kind: 'cut'; to?: number; factor?: number; keep?: number };

/** An action and the sentence that says why (the window's `lastChange.reason` when it moves). */
export interface Decision {
  action: Action;
  reason: string;
}

/**
 * How far our share of the queue may sit from the target before a ±1 step. Narrow on purpose:
 * workers whose shares sit anywhere in the band stop moving, so its width bounds how unequal
 * their windows can stay ((target + band) / (target - band): 1.3× at the default target).
 */
export const HOLD_BAND = 0.25;
/** Our share of the engine's queue is steered to max(targetWaiting, this × the engine's running). */
export const TARGET_SHARE_OF_RUNNING = 0.03;

/** What a signal says of the engine's queue, in the rule's terms. */
export interface QueueSignal {
  /** Our share of the engine's queue (requests). */
  own: number;
  /** Whether the engine has a queue at all. */
  queued: boolean;
  /** `running` climbed since the last decision: a queue is a backlog being admitted. */
  climbing: boolean;
  /** Of ours, how many the engine admitted since the last decision (while climbing). */
  admitted: number;
  /** Preemptions since the last decision, and the engine's running count. */
  preempted: number;
  running: number | null;
  kvCacheUsage: number | null;
  /** Whether our requests are at the engine (null: unknown). */
  atEngine: boolean | null;
  /** The share of the queue to steer to. @defaultValue targetWaiting */
  target?: number;
  /** A cut keeps at least this share of the window. @defaultValue 0.5 */
  keep?: number;
}

/** The window's own numbers the rule reads. */
export interface RuleContext {
  probing: boolean;
  /** The window now. */
  size: number;
  /** Our requests in flight (the window when the worker does not say). */
  mine: number;
  targetWaiting: number;
  kvHighWater: number;
}

/** Steer our share of the engine's queue to the target, whatever saw the queue. */
export function queueRule(s: QueueSignal, ctx: RuleContext, said: string): Decision {
  const target = s.target ?? ctx.targetWaiting;
  const { mine, size } = ctx;
  const { own, climbing } = s;
  // A preemption now and then is the KV cache at its edge, where the engine does best; many
  // (2% of the running ones per decision) are a cache over-full, evicting and recomputing.
  const preempted = s.preempted >= Math.max(2, 0.02 * (s.running ?? 0));
  // A queue while running climbs is a backlog being admitted: no reason to shrink or to leave
  // probing; a small share of it is no reason not to grow either.
  const full = s.queued && !climbing;
  if (s.queued && climbing && own >= target - HOLD_BAND && (!ctx.probing || own > s.admitted)) {
    // A backlog the engine will not have admitted by the next decision: wait for it. While
    // probing, a shorter one is room (else the engine's admission would run dry meanwhile).
    return { action: { kind: 'wait' }, reason: said };
  }
  if (full && own > 2 * target && mine - (own - target) >= size) {
    // The excess is counted against what is in flight, not the window: after a cut, the
    // requests above the new window stay queued until they finish, and cutting the window by
    // them again would count one excess twice.
    return { action: { kind: 'hold' }, reason: `${said}: too long, but the last cut has not shown yet` };
  }
  if (full && own > 2 * target) {
    return { action: { kind: 'cut', to: Math.round(mine - (own - target)), ...(s.keep ? { keep: s.keep } : {}) }, reason: `${said}: too long` };
  }
  if ((preempted || (full && own > target + HOLD_BAND)) && mine > size) {
    return { action: { kind: 'hold' }, reason: `${preempted ? 'engine preempting' : `${said}: a little long`}, but the last cut has not shown yet` };
  }
  if (preempted) {
    // More running than the KV cache holds as they grow: the newest are evicted and their
    // prompt and output computed again. Those requests cost the engine work and add nothing;
    // step back until it stops (the window then sits just below the KV limit).
    return { action: { kind: 'down1' }, reason: 'engine preempting: KV cache over-full' };
  }
  if (full && own > target + HOLD_BAND) return { action: { kind: 'down1' }, reason: `${said}: a little long` };
  if (full && own >= target - HOLD_BAND) return { action: { kind: 'hold' }, reason: `${said}: on target` };
  if (s.kvCacheUsage != null && s.kvCacheUsage > ctx.kvHighWater) return { action: { kind: 'hold' }, reason: 'KV cache nearly full' };
  if (s.preempted > 0) return { action: { kind: 'hold' }, reason: `engine preempted ${s.preempted}: at the KV cache's edge` };
  if (s.atEngine === false) {
    // Do not grow on numbers that do not include our requests, but do not leave probing either.
    return { action: { kind: 'wait' }, reason: 'our requests are not reaching the engine' };
  }
  // No queue, or our share of it below the target: room. Probing grows by its factor (a short
  // queue at a busy engine is requests that arrived during a step, not a full one).
  return { action: { kind: s.queued ? 'short' : 'grow' }, reason: `${said}: ${s.queued ? 'short' : 'room'}` };
}
