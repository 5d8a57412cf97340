/**
 * A page's text layer as readable lines. Pure: it takes text runs, pdf.js's text items as they
 * are or PDFium's characters made into runs (pdfium-page.ts), and knows nothing else about
 * either engine, so both give the same lines.
 */

/** The part of a pdf.js TextItem this module reads (pdfium-page.ts builds the same). */
export interface TextRun {
  str: string;
  /** [a, b, c, d, e, f]: the text matrix; (e, f) is where the run starts, (a, b) its direction. */
  transform: number[];
  width: number;
  height: number;
  /** pdf.js saw the end of a line after this run. */
  hasEOL: boolean;
}

/**
 * Joins runs in content order (pdf.js's order, which is the reading order of nearly every
 * producer) into lines. A new line starts after `hasEOL`, or when the baseline moves by more
 * than half the text height across the writing direction (producers that position each line
 * with a matrix instead of emitting a line break). A space goes between two runs on one line
 * when there is a visible gap and neither run already supplies one. Empty lines collapse to
 * at most one, so paragraphs stay apart without runs of blank lines.
 */
export function joinTextRuns(items: Iterable<TextRun | object>): string {
  const lines: string[] = [];
  let line = '';
  // Whether `line` ends in white space, kept as it grows: testing the line itself each time
  // (a regular expression on a string built by +=) flattened and scanned it at every run,
  // quadratic in its length for PDFium's one run a character.
  let endsInSpace = false;
  let prev: TextRun | undefined;

  const endLine = () => {
    lines.push(line.replace(/[ \t]+$/u, ''));
    line = '';
    endsInSpace = false;
  };

  for (const item of items) {
    if (!isRun(item)) continue; // marked-content markers
    if (prev && !prev.hasEOL && item.str !== '') {
      if (movedAcross(prev, item)) endLine();
      else if (line !== '' && !endsInSpace && needsSpace(prev, item)) {
        line += ' ';
        endsInSpace = true;
      }
    }
    if (item.str !== '') {
      line += item.str;
      endsInSpace = /\s$/u.test(item.str);
    }
    if (item.hasEOL) endLine();
    if (item.str !== '' || item.hasEOL) prev = item;
  }
  if (line !== '') endLine();

  const out: string[] = [];
  for (const l of lines) {
    if (l === '' && (out.length === 0 || out.at(-1) === '')) continue;
    out.push(l);
  }
  while (out.at(-1) === '') out.pop();
  return out.join('\n');
}

function isRun(item: unknown): item is TextRun {
  const r = item as Partial<TextRun>;
  return typeof r.str === 'string' && Array.isArray(r.transform);
}

/** The writing direction of a run as a unit vector (horizontal when the matrix is degenerate). */
function direction(run: TextRun): [number, number] {
  const a = run.transform[0] ?? 1;
  const b = run.transform[1] ?? 0;
  const n = Math.hypot(a, b);
  return n > 0 ? [a / n, b / n] : [1, 0];
}

function movedAcross(prev: TextRun, next: TextRun): boolean {
  const [dx, dy] = direction(prev);
  const ex = (next.transform[4] ?? 0) - (prev.transform[4] ?? 0);
  const ey = (next.transform[5] ?? 0) - (prev.transform[5] ?? 0);
  const across = Math.abs(ex * -dy + ey * dx);
  const size = Math.max(prev.height, next.height, 1);
  return across > size / 2;
}

/** Whether a space goes between `prev` and `next` on a line not (yet) ending in white space. */
function needsSpace(prev: TextRun, next: TextRun): boolean {
  if (/^\s/u.test(next.str)) return false;
  const [dx, dy] = direction(prev);
  const ex = (next.transform[4] ?? 0) - (prev.transform[4] ?? 0);
  const ey = (next.transform[5] ?? 0) - (prev.transform[5] ?? 0);
  const along = ex * dx + ey * dy;
  const gap = along - prev.width;
  const size = Math.max(prev.height, next.height, 1);
  // A gap of a fifth of the font size reads as a word break; runs that step backwards
  // (a new column on the same baseline) are separated too.
  return gap > size * 0.2 || along < 0;
}
