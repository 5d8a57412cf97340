/** memory.ts: the pool's memory verdicts from resident sets alone (pure, no children). */
import { describe, expect, it } from 'vitest';
import { memoryVerdicts } from '../../src/render/memory.ts';

const limits = { maxRssMb: 1000, maxTotalRssMb: 1500 };

describe('memoryVerdicts', () => {
  it('leaves renderers alone while each and all together fit', () => {
    expect(memoryVerdicts([{ key: 'a', rss: 900, busy: true }, { key: 'b', rss: 500, busy: false }], limits)).toEqual([]);
  });

  it('kills a busy renderer above maxRssMb, but not an idle one (it is recycled after its page)', () => {
    const v = memoryVerdicts([{ key: 'a', rss: 1200, busy: true }, { key: 'b', rss: 1100, busy: false }], { ...limits, maxTotalRssMb: 10_000 });
    expect(v).toEqual([{ key: 'a', action: 'kill', reason: expect.stringMatching(/1200 MB resident, above maxRssMb 1000/) }]);
  });

  it('over the total: lets idle renderers go first, largest first, and stops once the rest fits', () => {
    const v = memoryVerdicts(
      [
        { key: 'busy', rss: 900, busy: true },
        { key: 'small', rss: 200, busy: false },
        { key: 'large', rss: 600, busy: false },
      ],
      limits,
    );
    expect(v).toEqual([{ key: 'large', action: 'retire' }]);
  });

  it('over the total with nothing idle to let go: kills the largest busy renderer', () => {
    const v = memoryVerdicts(
      [
        { key: 'a', rss: 700, busy: true },
        { key: 'b', rss: 950, busy: true },
        { key: 'c', rss: 120, busy: false },
      ],
      limits,
    );
    expect(v).toEqual([
      { key: 'c', action: 'retire' },
      { key: 'b', action: 'kill', reason: expect.stringMatching(/together: 1650 MB resident, above maxTotalRssMb 1500; the largest busy one \(950 MB\)/) },
    ]);
  });

  it('counts a renderer whose size /proc cannot tell as 0', () => {
    expect(memoryVerdicts([{ key: 'a', rss: undefined, busy: true }], { maxRssMb: 1, maxTotalRssMb: 1 })).toEqual([]);
  });
});
