/**
 * `--trace`: a scenario's samples as a compact timeline on stderr, every `everyMs`: what the
 * engine generated since the previous line, its running and waiting, and the workers' window,
 * in flight and gate. For seeing how the window moves, not for the docs.
 */
import type { Sample } from './throughput-sampler.ts';

export function printTrace(title: string, samples: Sample[], everyMs = 2000): void {
  const first = samples.find((s) => s.generated > 0);
  if (!first) return;
  const t0 = first.t;
  process.stderr.write(`--- ${title}\n    t s   tok/s  run wait   kv  window flight gate queued  cpu\n`);
  let prev: Sample | null = null;
  for (const s of samples) {
    if (prev && s.t - prev.t < everyMs) continue;
    const rate = prev ? (s.generated - prev.generated) / ((s.t - prev.t) / 1000) : 0;
    const cpu = prev && s.cpuTotal > prev.cpuTotal ? (s.cpuBusy - prev.cpuBusy) / (s.cpuTotal - prev.cpuTotal) : 0;
    const sum = (f: (w: Sample['workers'][number]) => number) => s.workers.reduce((n, w) => n + f(w), 0);
    const cells = [
      ((s.t - t0) / 1000).toFixed(0).padStart(5),
      rate.toFixed(0).padStart(7),
      String(s.running).padStart(4),
      String(s.waiting).padStart(4),
      `${(s.kv * 100).toFixed(0)}%`.padStart(4),
      (s.workers.length ? s.workers.map((w) => w.window).join('+') : '—').padStart(7),
      String(sum((w) => w.inFlight)).padStart(6),
      String(sum((w) => w.gateWaiting)).padStart(4),
      String(s.queued ?? '—').padStart(6),
      `${(cpu * 100).toFixed(0)}%`.padStart(4),
    ];
    process.stderr.write(`${cells.join(' ')}\n`);
    prev = s;
  }
}
