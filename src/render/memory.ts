/**
 * What the pool does about renderers' memory, decided from their resident sets alone (pure; the
 * pool reads /proc and applies the verdicts):
 * - a busy renderer above `maxRssMb` is killed (its page fails as RENDER_CRASHED, out of memory);
 * - when all renderers together are above `maxTotalRssMb`, idle ones are let go first (largest
 *   first: they come back on demand, empty), then busy ones are killed, largest first, until the
 *   rest fits.
 */

export interface RendererMemory<K> {
  key: K;
  /** Resident set in MB; undefined where /proc cannot tell (counted as 0). */
  rss: number | undefined;
  busy: boolean;
}

export type MemoryVerdict<K> = { key: K; action: 'kill'; reason: string } | { key: K; action: 'retire' };

export interface MemoryLimits {
  maxRssMb: number;
  maxTotalRssMb: number;
}

export function memoryVerdicts<K>(renderers: ReadonlyArray<RendererMemory<K>>, limits: MemoryLimits): Array<MemoryVerdict<K>> {
  const verdicts: Array<MemoryVerdict<K>> = [];
  const left: Array<RendererMemory<K> & { rss: number }> = [];
  for (const r of renderers) {
    const rss = r.rss ?? 0;
    if (r.busy && rss > limits.maxRssMb) {
      verdicts.push({
        key: r.key,
        action: 'kill',
        reason: `the renderer ran out of memory: ${Math.round(rss)} MB resident, above maxRssMb ${limits.maxRssMb}; it was killed`,
      });
    } else {
      left.push({ ...r, rss });
    }
  }
  let total = left.reduce((n, r) => n + r.rss, 0);
  if (total <= limits.maxTotalRssMb) return verdicts;
  const order = [...left].sort((a, b) => Number(a.busy) - Number(b.busy) || b.rss - a.rss);
  for (const r of order) {
    if (total <= limits.maxTotalRssMb) break;
    if (r.busy) {
      verdicts.push({
        key: r.key,
        action: 'kill',
        reason: `the renderers ran out of memory together: ${Math.round(total)} MB resident, above maxTotalRssMb ${limits.maxTotalRssMb}; the largest busy one (${Math.round(r.rss)} MB) was killed`,
      });
    } else {
      verdicts.push({ key: r.key, action: 'retire' });
    }
    total -= r.rss;
  }
  return verdicts;
}
