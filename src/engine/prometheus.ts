/**
 * A small parser for the Prometheus text exposition format (version 0.0.4), enough for what
 * engines export: `# TYPE` lines, samples with labels, `_sum`/`_count`/`_bucket` series of
 * histograms, NaN and ±Inf. Lines it cannot read are skipped, not fatal: one odd metric from a
 * newer server must not blind the controller to the rest.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** Metric family name → its declared type (`counter`, `gauge`, `histogram`, ...). */
  types: Map<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

export function parsePrometheus(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s*TYPE\s+(\S+)\s+(\S+)/.exec(line);
      if (m?.[1] !== undefined && m[2] !== undefined) types.set(m[1], m[2]);
      continue;
    }
    const sample = parseSample(line);
    if (sample) samples.push(sample);
  }
  return { samples, types };
}

function parseSample(line: string): Sample | null {
  const nameMatch = NAME.exec(line);
  if (!nameMatch) return null;
  const name = nameMatch[0];
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    const end = parseLabels(line, i + 1, labels);
    if (end < 0) return null;
    i = end;
  }
  // The value, then an optional timestamp we ignore.
  const rest = line.slice(i).trim().split(/\s+/);
  const value = parseValue(rest[0] ?? '');
  return value === null ? null : { name, labels, value };
}

/** Reads `a="x",b="y"}` from `start`; returns the index after `}`, or -1 on malformed text. */
function parseLabels(line: string, start: number, into: Record<string, string>): number {
  let i = start;
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (line[i] === '}') return i + 1;
    const key = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i))?.[0];
    if (!key) return -1;
    i += key.length;
    while (line[i] === ' ') i++;
    if (line[i] !== '=') return -1;
    i++;
    while (line[i] === ' ') i++;
    if (line[i] !== '"') return -1;
    i++;
    let value = '';
    for (;;) {
      const c = line[i];
      if (c === undefined) return -1;
      if (c === '\\') {
        const next = line[i + 1];
        value += next === 'n' ? '\n' : (next ?? '');
        i += 2;
        continue;
      }
      if (c === '"') {
        i++;
        break;
      }
      value += c;
      i++;
    }
    into[key] = value;
  }
}

function parseValue(token: string): number | null {
  switch (token) {
    case 'NaN':
      return Number.NaN;
    case '+Inf':
    case 'Inf':
      return Number.POSITIVE_INFINITY;
    case '-Inf':
      return Number.NEGATIVE_INFINITY;
    case '':
      return null;
    default: {
      const n = Number(token);
      return Number.isNaN(n) ? null : n;
    }
  }
}
