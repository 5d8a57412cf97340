/**
 * On a terminal, `--wait` notes (work no worker takes) end the live block; once a worker comes
 * the note goes, and the block is one line shorter. The redraw moved up over the new, shorter
 * block only: the note's old line stayed on the screen below the total, for good (and the final
 * summary was written over it). What the terminal shows is read off the bytes written, by a
 * small screen model (cursor up, erase line, erase below, newline).
 */
import { expect, it } from 'vitest';
import { progressPrinter } from '../../src/observe/bar.ts';
import { progressOf } from '../../src/observe/progress.ts';
import type { DocMeta, DocRecord } from '../../src/store/types.ts';

const T0 = Date.parse('2026-01-01T00:00:00Z');

function record(over: Partial<DocRecord> = {}): DocRecord {
  const docId = 'd00000000000000000001';
  const meta = { docId, kind: 'pdf', source: 'in/report.pdf', sha256: 'x', name: 'report', outSub: '', units: 4, feedUnits: 4, blob: 'b', task: {} as DocMeta['task'], model: null, queue: 'infer', priority: 0, enqueuedAt: new Date(T0).toISOString() } as DocMeta;
  return { docId, meta, gen: 1, units: 4, state: 'running', done: 0, failed: 0, promptTokens: 0, completionTokens: 0, unitsWithoutUsage: 0, engineMs: 0, createdAt: new Date(T0).toISOString(), startedAt: null, finishedAt: null, resumedAt: null, resumedFrom: 0, writtenAt: null, files: [], writeError: null, fed: 0, reopens: 0, ...over };
}

/** A terminal screen: the rows as they show after the bytes written so far. */
class Screen {
  readonly isTTY = true;
  readonly columns = 100;
  readonly rows = 24;
  lines: string[] = [''];
  private y = 0;
  private x = 0;
  write(s: string): boolean {
    for (let i = 0; i < s.length; ) {
      const esc = /^\x1b\[(\d*)([A-Za-z])/.exec(s.slice(i));
      if (esc) {
        const n = esc[1] === '' ? 0 : Number(esc[1]);
        if (esc[2] === 'A') this.y = Math.max(0, this.y - Math.max(1, n));
        else if (esc[2] === 'K' && n === 2) this.lines[this.y] = '';
        else if (esc[2] === 'K') this.lines[this.y] = this.lines[this.y]!.slice(0, this.x);
        else if (esc[2] === 'J' && n === 0) this.lines = [...this.lines.slice(0, this.y), (this.lines[this.y] ?? '').slice(0, this.x)];
        i += esc[0].length;
        continue;
      }
      const ch = s[i++]!;
      if (ch === '\n') {
        this.y++;
        this.x = 0;
        while (this.lines.length <= this.y) this.lines.push('');
      } else {
        const line = this.lines[this.y]!.padEnd(this.x);
        this.lines[this.y] = line.slice(0, this.x) + ch + line.slice(this.x + 1);
        this.x++;
      }
    }
    return true;
  }
  text(): string {
    return this.lines.join('\n');
  }
}

it('a note that goes leaves nothing of itself on the terminal', () => {
  const screen = new Screen();
  let now = T0;
  const print = progressPrinter(screen, { now: () => now });
  const note = 'no worker has a heartbeat under this prefix (none started): nothing takes this work';
  print([progressOf(record(), now)], [note]);
  expect(screen.text()).toContain(`! ${note}`);
  now += 1000;
  print([progressOf(record({ state: 'running', done: 2, startedAt: new Date(T0).toISOString() }), now)], []);
  expect(screen.text()).not.toContain('no worker has a heartbeat');
  now += 1000;
  print([progressOf(record({ state: 'written', done: 4, startedAt: new Date(T0).toISOString(), finishedAt: new Date(now).toISOString(), writtenAt: new Date(now).toISOString() }), now)], []);
  expect(screen.text()).not.toContain('no worker has a heartbeat');
  expect(screen.text().trimEnd().split('\n').at(-1)).toMatch(/^total: /);
});

it('a note longer than the terminal is wide is shown whole, on several lines', () => {
  const screen = new Screen();
  Object.defineProperty(screen, 'columns', { value: 80 });
  const print = progressPrinter(screen, { now: () => T0 });
  const note = 'no worker has a heartbeat under this prefix (none started): nothing takes this work; start one (docbatch worker), or check that workers reach this Redis and prefix';
  print([progressOf(record(), T0)], [note]);
  const shown = screen.text().split('\n').map((l) => l.trim()).join(' ');
  expect(shown).toContain(note);
  for (const line of screen.lines) expect(line.length).toBeLessThan(80);
});
