/**
 * Whether a unit is the cause of the engine's faults, and when it has been sent enough: the
 * counts of one unit's sends and of the faults they met, kept as long as the unit is (across the
 * tries the answer checks ask for), so a poison unit is caught across tries. No engine, no
 * Redis: dispatch.ts tells it what happened and asks it what that makes of the unit.
 *
 * - A unit after which the connection drops while the engine itself stays up is the cause:
 *   after MAX_DROPS such drops it fails with UNIT_CRASHES_ENGINE.
 * - A unit in flight at SUSPECT_AFTER_OUTAGES engine outages is a suspect and is sent alone; if
 *   the engine goes down again while it is alone, MAX_SOLO_OUTAGES times, it is the cause. An
 *   answer the engine aborted itself (finish_reason "abort") counts as an outage of the unit's
 *   sends, never towards a suspect or a cause. An answer while alone clears the suspicion.
 * - No unit is sent more than MAX_SENDS times; one that runs out of sends fails with the code of
 *   the cause most of them met (out of memory: ENGINE_OOM; refusals: ENGINE_BUSY; drops and
 *   outages while alone: UNIT_CRASHES_ENGINE; outages: ENGINE_DOWN).
 */
import { DocbatchError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import { FinalUnitError } from './unit-errors.ts';

/** Sends of one unit, all causes together, before it fails for good. */
export const MAX_SENDS = 10;
/** Dropped connections (engine up) after which a unit is taken for the cause. */
const MAX_DROPS = 3;
/** Outages a unit was in flight at before it is sent alone. */
const SUSPECT_AFTER_OUTAGES = 3;
/** Outages while alone at the engine after which a suspect is taken for the cause. */
const MAX_SOLO_OUTAGES = 2;

export class UnitFaults {
  private readonly log: Logger;
  private count = 0;
  private busy = 0;
  private drops = 0;
  private outages = 0;
  /** Of the outages, answers the engine aborted itself (finish_reason "abort"): never this unit's fault. */
  private engineAborts = 0;
  private soloOutages = 0;
  private ooms = 0;

  constructor(log: Logger) {
    this.log = log;
  }

  /** Sends so far. */
  get sends(): number {
    return this.count;
  }

  /** A send begins. */
  sent(): void {
    this.count++;
  }

  /** A send that was not the unit's to count (nothing was sent; the endpoint's pace) is taken back. */
  takeBack(): void {
    this.count--;
  }

  /** A suspect: in flight at engine outages (a request the engine aborted itself says nothing about the unit); sent alone. */
  get suspect(): boolean {
    return this.outages - this.engineAborts >= SUSPECT_AFTER_OUTAGES;
  }

  /** Answered while alone at the engine: the outages it was in flight at were not its doing. */
  answeredAlone(): void {
    this.outages = 0;
    this.engineAborts = 0;
  }

  oom(): void {
    this.ooms++;
  }

  /** A busy refusal; how many so far (the backoff grows with them). */
  refused(): number {
    return ++this.busy;
  }

  /**
   * The connection dropped while the engine stayed up: counted against this unit, which fails
   * with UNIT_CRASHES_ENGINE at MAX_DROPS. The milliseconds to back off before sending again.
   */
  dropped(err: DocbatchError): number {
    this.drops++;
    this.log.warn({ code: err.code, drops: this.drops, err: err.message }, 'the connection dropped while the engine is up: counted against this unit');
    if (this.drops >= MAX_DROPS) {
      throw new DocbatchError('UNIT_CRASHES_ENGINE', `the connection was dropped ${this.drops} times while the engine stayed up (last: ${err.message})`, { cause: err });
    }
    return 250 * this.drops;
  }

  /** The engine stopped the request itself (finish_reason "abort"): an outage, not one this unit caused. */
  engineAborted(): void {
    this.engineAborts++;
  }

  /** An outage the unit was in flight at; `solo`: alone at the engine, which makes it the cause at MAX_SOLO_OUTAGES. */
  outage(solo: boolean, err: DocbatchError): void {
    this.outages++;
    if (!solo) return;
    this.soloOutages++;
    this.log.warn({ code: err.code, soloOutages: this.soloOutages }, 'engine went down while this unit was alone at it');
    if (this.soloOutages >= MAX_SOLO_OUTAGES) {
      throw new DocbatchError('UNIT_CRASHES_ENGINE', `the engine went down ${this.soloOutages} times while this unit was the only request at it (last: ${err.message})`, { cause: err });
    }
  }

  /** Whether the unit has used all its sends. */
  get outOfSends(): boolean {
    return this.count >= MAX_SENDS;
  }

  /** The unit used all its sends: it fails with the code of the cause most of them met. */
  outOfSendsError(): FinalUnitError {
    const causes: Array<[DocbatchError['code'], number, string]> = [
      ['UNIT_CRASHES_ENGINE', this.drops + this.soloOutages, `${this.drops} dropped connections, ${this.soloOutages} outages while alone`],
      ['ENGINE_OOM', this.ooms, `${this.ooms} out of memory`],
      ['ENGINE_BUSY', this.busy, `${this.busy} busy refusals`],
      ['ENGINE_DOWN', this.outages - this.soloOutages, `${this.outages} outages`],
    ];
    // The most frequent cause; on a tie, the first listed (the unit's own fault before the engine's).
    const top = causes.reduce((best, c) => (c[1] > best[1] ? c : best));
    const code = top[1] > 0 ? top[0] : 'ENGINE_BUSY';
    const what = code === 'ENGINE_OOM' ? 'ran out of memory at the engine' : 'got no answer';
    return new FinalUnitError(code, `sent ${this.count} times and ${what} (${causes.filter((c) => c[1] > 0).map((c) => c[2]).join(', ') || 'no cause counted'})`);
  }
}
