/**
 * Issue 14, progress people can follow (pure: records made here, a fake clock, a fake stream):
 * off a terminal one line per state change and a total at most every 10 s; on a terminal every
 * line fits the width, the block fits the height, and the total has the rate and time left; a
 * document whose units all failed never shows a full bar.
 */
import { describe, expect, it } from 'vitest';
import { bar, progressLine, progressPrinter, totalLine } from '../../src/observe/bar.ts';
import { byModel, progressOf, totalsOf, viewState } from '../../src/observe/progress.ts';
import type { DocMeta, DocRecord, DocState } from '../../src/store/types.ts';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

function record(i: number, over: Partial<DocRecord> = {}): DocRecord {
  const docId = `d${String(i).padStart(20, '0')}`;
  const meta = { docId, kind: 'pdf', source: `in/report-${i}.pdf`, sha256: 'x', name: `report-${i}`, outSub: '', units: 17, feedUnits: 17, blob: 'b', task: {} as DocMeta['task'], model: null, queue: 'infer', priority: 0, enqueuedAt: iso(T0) } as DocMeta;
  return { docId, meta, gen: 1, units: 17, state: 'running', done: 0, failed: 0, promptTokens: 0, completionTokens: 0, unitsWithoutUsage: 0, engineMs: 0, createdAt: iso(T0), startedAt: null, finishedAt: null, resumedAt: null, resumedFrom: 0, writtenAt: null, files: [], writeError: null, fed: 0, reopens: 0, ...over };
}

/** Document i at time t (seconds): queued until i, then one unit a second, written when all 17 are done. */
function at(i: number, t: number): DocRecord {
  const settled = Math.max(0, Math.min(17, Math.floor(t - i)));
  if (settled === 0) return record(i);
  const state: DocState = settled === 17 ? (t - i >= 18 ? 'written' : 'complete') : 'running';
  const failed = i === 7 ? settled : 0; // document 7: every unit fails
  return record(i, { state, done: settled - failed, failed, startedAt: iso(T0 + i * 1000), finishedAt: settled === 17 ? iso(T0 + (i + 17) * 1000) : null });
}

class Sink {
  text = '';
  isTTY: boolean;
  columns: number;
  rows: number;
  constructor(tty: boolean, columns = 80, rows = 24) {
    this.isTTY = tty;
    this.columns = columns;
    this.rows = rows;
  }
  write(s: string) {
    this.text += s;
    return true;
  }
}

describe('off a terminal', () => {
  it('8 documents: one line per state change each, a total at most every 10 s', () => {
    const sink = new Sink(false);
    let now = T0;
    const print = progressPrinter(sink, { now: () => now });
    // Polled every 250 ms for 30 s, as enqueue --wait does.
    for (let t = 0; t <= 30; t += 0.25) {
      now = T0 + t * 1000;
      print(Array.from({ length: 8 }, (_, i) => progressOf(at(i, t), now)));
    }
    const lines = sink.text.trim().split('\n');
    const states = lines.filter((l) => /^d\d{20}  /.test(l));
    const totals = lines.filter((l) => l.startsWith('total: '));
    expect(states.length + totals.length).toBe(lines.length);
    for (let i = 0; i < 8; i++) {
      const mine = states.filter((l) => l.startsWith(`d${String(i).padStart(20, '0')}`));
      expect(mine.length).toBeLessThanOrEqual(3); // queued, running, then written or failed
      expect(mine.at(-1)).toMatch(i === 7 ? /failed +report-7  17\/17, 17 failed: every unit failed$/ : /written +report-\d  17\/17$/);
    }
    // Totals at 10 s and 20 s, and one as everything finished (at 25 s).
    expect(totals).toHaveLength(3);
    expect(totals.at(-1)).toMatch(/^total: 136\/136 units \(17 failed\), [\d.]+\/s, elapsed 24s, 7\/8 documents written, 1 failed$/);
    expect(totals[0]).toMatch(/\/s, eta \d+s, elapsed 10s, /);
  });
});

describe('on a terminal', () => {
  it('every line fits the width, the block fits the height, the total has rate and time left', () => {
    const sink = new Sink(true, 60, 10);
    const print = progressPrinter(sink, { now: () => T0 + 12_000 });
    print(Array.from({ length: 20 }, (_, i) => progressOf(at(i, 12), T0 + 12_000)));
    // Each frame: cursor up (after the first), then lines each starting with an erase.
    const drawn = sink.text.split('\n').filter(Boolean).map((l) => l.replace(/^(\x1b\[\d+A)?\x1b\[2K/, ''));
    expect(drawn.length).toBeLessThanOrEqual(9);
    for (const line of drawn) expect(line.length).toBeLessThanOrEqual(59);
    expect(drawn.at(-1)).toMatch(/^total: 78\/340 units \(5 failed\), [\d.]+\/s, eta \d+s, elapsed/);
    expect(drawn.at(-2), drawn.join('\n')).toMatch(/^… \d+ more$/);
  });
});

describe('the bar', () => {
  it('is never full for a document whose units all failed', () => {
    const allFailed = record(1, { state: 'written', done: 0, failed: 17, startedAt: iso(T0), finishedAt: iso(T0 + 5000) });
    expect(bar(0, 17, 17)).toBe(`[${'x'.repeat(24)}]`);
    expect(progressLine(progressOf(allFailed))).not.toContain('#');
    expect(progressLine(progressOf(allFailed))).toMatch(/17\/17 .* FAILED 17 failed$/);
    expect(viewState(allFailed)).toBe('failed');
    expect(bar(16, 1, 17)).toMatch(/^\[#{22}x{2}\]$/);
    expect(bar(16, 0, 17)).toMatch(/^\[#{22}-{2}\]$/);
    expect(bar(17, 0, 17)).toBe(`[${'#'.repeat(24)}]`);
  });

  it('the total line counts states and units', () => {
    const t = totalsOf([progressOf(at(0, 30), T0 + 30_000), progressOf(at(20, 30), T0 + 30_000)], T0 + 30_000);
    expect(totalLine(t)).toMatch(/^total: 27\/34 units, [\d.]+\/s, eta \d+s, elapsed 30s, 1\/2 documents written$/);
  });
});

describe('per model', () => {
  it('groups documents by the model their run asked for, with their own rate and tokens', () => {
    const now = T0 + 20_000;
    const withModel = (i: number, model: string | null, tokens: number) => {
      const r = at(i, 20);
      return progressOf({ ...r, meta: { ...r.meta, model }, completionTokens: tokens }, now);
    };
    const groups = byModel([withModel(0, 'qwen-7b', 100), withModel(1, 'qwen-7b', 50), withModel(2, null, 7)], now);
    expect(groups.map((g) => g.model)).toEqual([null, 'qwen-7b']);
    const qwen = groups[1]!.totals;
    expect(qwen).toMatchObject({ documents: 2, units: 34, done: 34, completionTokens: 150, finished: true });
    // Units settled over the span from the first start (0 s) to the last finish (18 s).
    expect(qwen.rate).toBeCloseTo(34 / 18, 5);
    expect(groups[0]!.totals).toMatchObject({ documents: 1, done: 17, completionTokens: 7 });
  });
});
