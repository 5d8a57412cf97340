/**
 * Progress of documents as text, for `enqueue --wait`, `retry --wait` and `status`.
 *
 * - On a terminal: a block redrawn in place, one line per document
 *   (`name [####xx----] 120/352 3.2/s eta 1m20s 2 failed`) and a total line with the overall
 *   rate and time left (first, so a narrow terminal cuts the document counts instead); every line fits the terminal's width, and the block its height (finished
 *   documents give way to running ones, then "… N more").
 * - Off a terminal (a file, a pipe, CI logs): one line when a document changes state (queued,
 *   running, written, failed), and a total line at most every 10 s. Eight documents make a few
 *   dozen lines, not one per document every few seconds.
 *
 * The bar fills with `#` for units answered and `x` for units failed: a document whose units all
 * failed never shows a full bar of `#`.
 */
import { printable } from '../printable.ts';
import { formatDuration, formatRate, totalsOf, type DocProgress, type Totals, type ViewState } from './progress.ts';

export interface LineOptions {
  /** Characters of the document's name. @defaultValue 24 */
  nameWidth?: number;
  /** Characters of the bar between its brackets. @defaultValue 24 */
  barWidth?: number;
}

/** `[####xx------]`: answered, failed, left, in proportion. */
export function bar(done: number, failed: number, units: number, width = 24): string {
  if (units <= 0) return `[${'#'.repeat(width)}]`;
  const d = Math.floor((done / units) * width);
  // Any failure shows (at least one mark), and never rounds the answered part up to full.
  const f = failed > 0 ? Math.max(1, Math.min(width - d, Math.round(((done + failed) / units) * width) - d)) : 0;
  return `[${'#'.repeat(d)}${'x'.repeat(f)}${'-'.repeat(Math.max(0, width - d - f))}]`;
}

function fit(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, Math.max(1, width - 1))}…` : text.padEnd(width);
}

export function progressLine(p: DocProgress, options: LineOptions | number = {}): string {
  const o = typeof options === 'number' ? { nameWidth: options } : options;
  const r = p.record;
  const name = fit(printable(r.meta.name), o.nameWidth ?? 24); // a name from a file name: no control or invisible characters reach the terminal
  const tail = p.finished ? (p.state === 'failed' ? 'FAILED' : 'written') : p.state === 'queued' ? 'queued' : `eta ${formatDuration(p.etaSeconds)}`;
  const failed = r.failed > 0 ? ` ${r.failed} failed` : '';
  return `${name} ${bar(r.done, r.failed, r.units, o.barWidth ?? 24)} ${String(p.settled).padStart(String(r.units).length)}/${r.units} ${formatRate(p.rate).padStart(8)} ${tail}${failed}`;
}

/**
 * `total: 120/352 units (2 failed), 12.3/s, eta 20s, elapsed 1m20s, 3/8 documents written, 1 queued`:
 * progress and time first, so a narrow terminal cuts the document counts, not the rate.
 */
export function totalLine(t: Totals): string {
  const units = `${t.done + t.failed}/${t.units} units${t.failed > 0 ? ` (${t.failed} failed)` : ''}`;
  const time = `${t.finished ? '' : `eta ${formatDuration(t.etaSeconds)}, `}elapsed ${formatDuration(t.elapsedSeconds)}`;
  const states = [`${t.byState.written}/${t.documents} documents written`];
  if (t.byState.failed > 0) states.push(`${t.byState.failed} failed`);
  if (t.byState.queued > 0) states.push(`${t.byState.queued} queued`);
  return `total: ${units}, ${formatRate(t.rate)}, ${time}, ${states.join(', ')}`;
}

/** One line for a document that changed state: `d5f0c…  running  report.pdf  3/17`. */
export function stateLine(p: DocProgress): string {
  const r = p.record;
  const failed = r.failed > 0 ? `, ${r.failed} failed` : '';
  const why = p.state === 'failed' && r.writeError ? `: ${r.writeError.code}` : p.state === 'failed' && r.failed === r.units ? ': every unit failed' : '';
  return `${r.docId}  ${p.state.padEnd(7)}  ${printable(r.meta.name)}  ${p.settled}/${r.units}${failed}${why}`;
}

/** What the printer writes to: a stream (a terminal when `isTTY`, with its `columns` and `rows`). */
export interface ProgressOut {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
  rows?: number;
}

/** Redraws a block of lines in place on a terminal, each cut to the width. */
export class LiveBlock {
  private lines = 0;
  private readonly out: ProgressOut;

  constructor(out: ProgressOut) {
    this.out = out;
  }

  draw(lines: string[]): void {
    const width = Math.max(20, (this.out.columns ?? 80) - 1);
    let s = '';
    if (this.lines > 0) s += `\x1b[${this.lines}A`;
    for (const line of lines) s += `\x1b[2K${line.length > width ? `${line.slice(0, width - 1)}…` : line}\n`;
    // A shorter block than the last (a note gone): erase what is left of the last one below it.
    if (lines.length < this.lines) s += '\x1b[0J';
    this.out.write(s);
    this.lines = lines.length;
  }
}

export interface PrinterOptions {
  /** Off a terminal: a total line at most this often. @defaultValue 10_000 */
  totalEveryMs?: number;
  now?: () => number;
}

/** Lines for a terminal of `columns` x `rows`: running documents first, then the rest, then the total. */
export function terminalLines(progress: readonly DocProgress[], columns: number, rows: number, now = Date.now()): string[] {
  const width = Math.max(20, columns - 1);
  // name + bar share what the fixed parts (counts, rate, eta, failures: about 40) leave.
  const room = width - 40;
  const barWidth = Math.max(6, Math.min(24, Math.floor(room * 0.4)));
  const nameWidth = Math.max(6, Math.min(40, room - barWidth - 3));
  const order: Record<ViewState, number> = { running: 0, queued: 1, failed: 2, written: 3 };
  const sorted = [...progress].sort((a, b) => order[a.state] - order[b.state]);
  const fitsDocs = Math.max(1, rows - 2);
  const shown = sorted.length > fitsDocs ? sorted.slice(0, fitsDocs - 1) : sorted;
  const lines = shown.map((p) => progressLine(p, { nameWidth, barWidth }));
  if (shown.length < sorted.length) lines.push(`… ${sorted.length - shown.length} more`);
  lines.push(totalLine(totalsOf(progress, now)));
  return lines;
}

/** `text` in lines of at most `width` characters, broken between words; later lines indented by 2. */
function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = `  ${word}`;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

/**
 * A progress printer for `--wait`: a live block on a terminal; state changes and a total every
 * 10 s otherwise. Notes (work no worker takes) end the block on a terminal; otherwise each is
 * written when it first appears, and again with the total line while it holds.
 */
export function progressPrinter(out: ProgressOut, options: PrinterOptions = {}): (progress: DocProgress[], notes?: string[]) => void {
  const now = options.now ?? Date.now;
  if (out.isTTY) {
    const block = new LiveBlock(out);
    return (progress, notes = []) => {
      // Notes whole (their advice is at the end), wrapped to the width; the block still fits the screen.
      const rows = out.rows ?? 24;
      const noted = notes.flatMap((n) => wrapWords(`! ${n}`, Math.max(20, (out.columns ?? 80) - 1))).slice(0, Math.max(0, rows - 4));
      block.draw([...terminalLines(progress, out.columns ?? 80, Math.max(3, rows - noted.length), now()), ...noted]);
    };
  }
  const every = options.totalEveryMs ?? 10_000;
  const seen = new Map<string, ViewState>();
  let said = new Set<string>();
  let lastTotal = now();
  let ended = false;
  return (progress, notes = []) => {
    if (ended) return;
    const fresh = notes.filter((n) => !said.has(n));
    for (const note of fresh) out.write(`! ${note}\n`);
    said = new Set(notes);
    for (const p of progress) {
      if (seen.get(p.record.docId) === p.state) continue;
      seen.set(p.record.docId, p.state);
      out.write(`${stateLine(p)}\n`);
    }
    const t = now();
    const allDone = progress.length > 0 && progress.every((p) => p.finished);
    if (allDone || t - lastTotal >= every) {
      lastTotal = t;
      out.write(`${totalLine(totalsOf(progress, t))}\n`);
      if (!allDone) for (const note of notes) if (!fresh.includes(note)) out.write(`! ${note}\n`);
    }
    ended = allDone;
  };
}
