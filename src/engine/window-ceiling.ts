/**
 * What the engine's memory allows, as the window (window.ts) learns it from out-of-memory
 * failures: OOM episodes, the remembered failing size (the ceiling), the hold before stepping
 * onto it again, and the clean-interval clock that growth after an OOM follows. Pure: every call
 * carries `now`; the window decides what to do with the answers.
 *
 * OOM EPISODES. When vLLM's engine dies every request in flight fails together: that is one
 * event. An episode opens on the first OOM and closes when the engine is up and a request *sent
 * after the episode began* succeeds, or when the engine has restarted (a new engine: its next
 * death is news, or a window that still kills it would never halve again). An OOM for a request
 * sent before the last halving (`sentAt`) is a straggler of that cut, not news; one sent after it
 * is news, inside the episode or not (an engine that answers OOM and stays up, `--oom-mode
 * request`, fails everything the halved window sends when that still does not fit, and no
 * success would ever close the episode); one whose send time is unknown, or that comes inside an
 * episode while the engine is known down (paused), only counts. The load that failed becomes the
 * ceiling, unless it is a request alone: too big by itself, which says nothing about concurrency.
 *
 * THE CLOCK. After an OOM the window grows +1 per clean interval (no OOM for `cleanIntervalMs`),
 * ×nearCeilingFactor slower within 10% of the ceiling, and steps onto the ceiling itself only
 * after sitting just below it for the hold (`ceilingHoldMs`, doubled by each OOM at or above the
 * ceiling, up to 8×: a hard limit is probed ever more rarely). Once the window has held the
 * ceiling for a clean interval, with that many requests in flight, the limit was lifted: the
 * ceiling is forgotten. Time spent paused (engine down) is not clean time.
 */

import type { ResolvedWindowOptions } from './window-options.ts';

/** A hard memory limit is probed at most this many times more rarely than `ceilingHoldMs`. */
const MAX_HOLD_FACTOR = 8;

type CeilingOptions = Pick<ResolvedWindowOptions, 'cleanIntervalMs' | 'nearCeilingFactor' | 'ceilingHoldMs' | 'probeAfterOomMs'>;

export class MemoryCeiling {
  private readonly opts: CeilingOptions;
  private size: number | null;
  private hold: number;
  private episodeStart: number | null = null;
  private lastOomAt: number | null = null;
  /** Since when no OOM (and no outage) interrupted growth. */
  private cleanFrom = Number.NEGATIVE_INFINITY;
  private atCeilingSince: number | null = null;
  /** OOM episodes (halvings), and every OOM reported. */
  episodes = 0;
  reports = 0;

  /** `ceiling`: a failing size remembered from an earlier run, or null. */
  constructor(opts: CeilingOptions, ceiling: number | null) {
    if (ceiling !== null && (!Number.isInteger(ceiling) || ceiling < 2)) {
      throw new TypeError(`WindowOptions.ceiling must be an integer >= 2 or null, got ${ceiling}`);
    }
    this.opts = opts;
    this.size = ceiling;
    this.hold = opts.ceilingHoldMs;
  }

  /** The remembered failing size, or null. */
  get ceiling(): number | null {
    return this.size;
  }

  /** An OOM episode is open: no request sent since it began has succeeded yet. */
  get inEpisode(): boolean {
    return this.episodeStart !== null;
  }

  /** Since when growth has been clean (no OOM, no outage). */
  get cleanSince(): number {
    return this.cleanFrom;
  }

  /**
   * An OOM was reported for a request sent at `sentAt` (when known), with `load` requests in
   * flight (the load that failed). True when it is news: a new episode, the ceiling set to the
   * load (unless alone); the window then halves the load.
   */
  oom(now: number, sentAt: number | undefined, paused: boolean, load: number): boolean {
    this.reports++;
    // A straggler of the last cut (sent before it) is not news; nor, inside an episode, is a
    // failure while the engine is known down (a request that waited on a rate limiter may be
    // sent into the outage). A death the health check saw first (paused, no episode) still is.
    if (paused && this.episodeStart !== null) return false;
    if (sentAt !== undefined && this.lastOomAt !== null && sentAt < this.lastOomAt) return false;
    // Inside an open episode, only a request known to be sent after the last cut is: the halved
    // window failed too (an engine that answers OOM and stays up never closes the episode).
    if (this.episodeStart !== null && sentAt === undefined) return false;
    this.episodes++;
    // Alone, a request that runs out of memory says nothing about concurrency (it is too big).
    if (load > 1) {
      if (this.size !== null && load >= this.size) {
        this.hold = Math.min(this.hold * 2, this.opts.ceilingHoldMs * MAX_HOLD_FACTOR);
      }
      this.size = load;
    }
    this.episodeStart = now;
    this.lastOomAt = now;
    this.cleanFrom = now;
    this.atCeilingSince = null;
    return true;
  }

  /** A request sent at `sentAt` succeeded: one sent after the episode began (engine up) closes it. */
  answered(sentAt: number, paused: boolean): void {
    if (this.episodeStart !== null && !paused && sentAt >= this.episodeStart) this.episodeStart = null;
  }

  /**
   * The engine is up again: a restarted engine is a new engine, so the episode is over (failures
   * of requests sent before the last halving stay ignored: `sentAt`), and clean time starts now.
   */
  engineUp(now: number): void {
    this.episodeStart = null;
    this.cleanFrom = now;
  }

  /** Fast growth (probing) may come back: no ceiling, and no OOM for `probeAfterOomMs`. */
  mayProbe(now: number): boolean {
    return this.size === null && (this.lastOomAt === null || now - this.lastOomAt >= this.opts.probeAfterOomMs);
  }

  /**
   * The window `size` at or above the ceiling: true once it has held it for a clean interval
   * while `saturated` (the worker filled it): the limit was lifted and is forgotten.
   */
  lifted(now: number, size: number, saturated: () => boolean): boolean {
    if (this.size === null || size < this.size) return false;
    this.atCeilingSince ??= now;
    if (now - Math.max(this.atCeilingSince, this.cleanFrom) >= this.opts.cleanIntervalMs && saturated()) {
      this.size = null;
      this.hold = this.opts.ceilingHoldMs;
      this.atCeilingSince = null;
      return true;
    }
    return false;
  }

  /** How long clean before the clock steps the window to `target`: slower near the ceiling, the hold onto it. */
  waitFor(target: number): number {
    const ceiling = this.size;
    let wait = this.opts.cleanIntervalMs;
    if (ceiling !== null && target >= ceiling) wait = Math.max(wait, this.hold);
    else if (ceiling !== null && target >= 0.9 * ceiling) wait *= this.opts.nearCeilingFactor;
    return wait;
  }

  /** Growth from `from` to `to` never jumps onto the ceiling: only the clock steps onto it (`ontoCeiling`). */
  cap(from: number, to: number, ontoCeiling: boolean): number {
    const ceiling = this.size;
    return to > from && ceiling !== null && to >= ceiling && !ontoCeiling ? Math.max(from, ceiling - 1) : to;
  }

  /** The window moved to `to`: below the ceiling, the time held at it starts again. */
  moved(to: number): void {
    if (this.size === null || to < this.size) this.atCeilingSince = null;
  }
}
