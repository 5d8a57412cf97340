/**
 * Live progress of documents on a terminal: one line per document, redrawn in place
 * (`name [#####-----] 120/352 3.2/s eta 1m20s`). Off a terminal, `plainLines` prints a line per
 * unfinished document every few seconds instead, so logs stay readable.
 */
import { printable } from '../printable.ts';
import { formatDuration, type DocProgress } from './progress.ts';

const WIDTH = 24;

export function progressLine(p: DocProgress, nameWidth = 24): string {
  const r = p.record;
  const ratio = r.units === 0 ? 1 : p.settled / r.units;
  const filled = Math.round(ratio * WIDTH);
  const bar = `${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}`;
  const shown = printable(r.meta.name); // a name from a file name: no control or invisible characters reach the terminal
  const name = shown.length > nameWidth ? `${shown.slice(0, nameWidth - 1)}…` : shown.padEnd(nameWidth);
  const rate = p.rate ? `${p.rate.toFixed(1)}/s` : '-';
  const tail = p.finished ? 'written' : `eta ${formatDuration(p.etaSeconds)}`;
  const failed = r.failed > 0 ? ` ${r.failed} failed` : '';
  return `${name} [${bar}] ${String(p.settled).padStart(String(r.units).length)}/${r.units} ${rate.padStart(8)} ${tail}${failed}`;
}

/** Redraws the block of lines in place on a TTY. */
export class LiveBlock {
  private lines = 0;
  private readonly out: NodeJS.WriteStream;

  constructor(out: NodeJS.WriteStream) {
    this.out = out;
  }

  draw(lines: string[]): void {
    let s = '';
    if (this.lines > 0) s += `\x1b[${this.lines}A`;
    for (const line of lines) s += `\x1b[2K${line.slice(0, (this.out.columns ?? 120) - 1)}\n`;
    this.out.write(s);
    this.lines = lines.length;
  }
}

/** A progress printer for `enqueue --wait`: live on a TTY, plain lines every `everyMs` otherwise. */
export function progressPrinter(out: NodeJS.WriteStream, everyMs = 5000): (progress: DocProgress[]) => void {
  if (out.isTTY) {
    const block = new LiveBlock(out);
    return (progress) => block.draw(progress.map((p) => progressLine(p)));
  }
  let last = 0;
  return (progress) => {
    const now = Date.now();
    if (now - last < everyMs) return;
    last = now;
    for (const p of progress) if (!p.finished) out.write(`progress ${progressLine(p, 40).replace(/\s+/g, ' ')}\n`);
  };
}
