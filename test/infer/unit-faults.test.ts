import { describe, expect, it } from 'vitest';
import { DocbatchError } from '../../src/errors.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { MAX_SENDS, UnitFaults } from '../../src/infer/unit-faults.ts';

// The poison-unit counts without an engine: what dispatch.ts tells them, what they make of the unit.
const down = new DocbatchError('ENGINE_DOWN', 'connection refused');

function thrown(fn: () => unknown): DocbatchError {
  try {
    fn();
  } catch (err) {
    return err as DocbatchError;
  }
  throw new Error('did not throw');
}

describe('UnitFaults', () => {
  it('makes a unit a suspect after three outages, not counting those the engine aborted itself; an answer alone clears it', () => {
    const faults = new UnitFaults(silentLogger());
    faults.outage(false, down);
    faults.outage(false, down);
    faults.engineAborted();
    faults.outage(false, down);
    expect(faults.suspect).toBe(false);
    faults.outage(false, down);
    expect(faults.suspect).toBe(true);
    faults.answeredAlone();
    expect(faults.suspect).toBe(false);
  });

  it('takes a unit for the cause at its second outage alone, and at its third drop with the engine up', () => {
    const alone = new UnitFaults(silentLogger());
    alone.outage(true, down);
    const solo = thrown(() => alone.outage(true, down));
    expect(solo.code).toBe('UNIT_CRASHES_ENGINE');
    expect(solo.message).toMatch(/went down 2 times while this unit was the only request/);

    const drops = new UnitFaults(silentLogger());
    expect(drops.dropped(down)).toBe(250);
    expect(drops.dropped(down)).toBe(500);
    const third = thrown(() => drops.dropped(down));
    expect(third.code).toBe('UNIT_CRASHES_ENGINE');
    expect(third.cause).toBe(down);
  });

  it('runs out of sends at MAX_SENDS, failing with the cause most sends met (a tie: the unit before the engine)', () => {
    const faults = new UnitFaults(silentLogger());
    for (let i = 0; i < MAX_SENDS; i++) faults.sent();
    faults.takeBack();
    expect(faults.outOfSends).toBe(false);
    faults.sent();
    expect(faults.outOfSends).toBe(true);
    faults.oom();
    faults.oom();
    expect(faults.refused()).toBe(1);
    expect(faults.outOfSendsError().code).toBe('ENGINE_OOM');
    expect(faults.outOfSendsError().message).toBe(`sent ${MAX_SENDS} times and ran out of memory at the engine (2 out of memory, 1 busy refusals)`);
    faults.dropped(down);
    faults.outage(false, down);
    faults.outage(false, down);
    // Drops 1 + solo 0 = 1, OOM 2, busy 1, outages 2: OOM is listed before ENGINE_DOWN.
    expect(faults.outOfSendsError().code).toBe('ENGINE_OOM');
    faults.dropped(down);
    // Drops 2 ties OOM 2: the unit's own fault first.
    expect(faults.outOfSendsError().code).toBe('UNIT_CRASHES_ENGINE');
    expect(new UnitFaults(silentLogger()).outOfSendsError().message).toBe('sent 0 times and got no answer (no cause counted)');
  });
});
