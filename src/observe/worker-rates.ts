/**
 * Throughput per worker over time, for the dashboard: every few seconds the dashboard reads the
 * workers' heartbeats (observe/workers.ts), whose `settled` counts units each worker settled
 * since it started, and keeps the last half hour of (time, count) per worker in memory. A rate
 * is the count's growth between two heartbeats; a worker that restarted (its count fell, or its
 * start time changed) starts a new series. Before two samples, the rate since the worker started
 * stands in. Nothing is written to Redis.
 *
 * `sparkline` draws a series as a small inline SVG (no script, no library: the page's CSP allows
 * only its own files).
 */
import type { Redis } from 'ioredis';
import { lifetimeRate, readWorkers, type WorkerBeat } from './workers.ts';

export interface RatePoint {
  /** Heartbeat time, ms since the epoch. */
  at: number;
  /** Units per second since the previous heartbeat. */
  rate: number;
}

export interface WorkerRate {
  beat: WorkerBeat;
  /** What it mostly settles: pages, chunks, documents, conversations, summaries. */
  kind: string;
  /** Units per second over the last minute of heartbeats (or since it started); 0 once it is silent. */
  now: number | null;
  series: RatePoint[];
}

interface Sample {
  at: number;
  count: number;
  startedAt: number | undefined;
}

export interface SamplerOptions {
  /** How often heartbeats are read. @defaultValue 5000 */
  everyMs?: number;
  /** How long samples are kept. @defaultValue 30 minutes */
  keepMs?: number;
}

export class WorkerRates {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly everyMs: number;
  private readonly keepMs: number;
  private readonly samples = new Map<string, Sample[]>();
  private timer: NodeJS.Timeout | null = null;

  constructor(redis: Redis, prefix: string, options: SamplerOptions = {}) {
    this.redis = redis;
    this.prefix = prefix;
    this.everyMs = options.everyMs ?? 5000;
    this.keepMs = options.keepMs ?? 30 * 60_000;
  }

  start(): void {
    if (this.timer) return;
    void this.sample().catch(() => undefined);
    this.timer = setInterval(() => void this.sample().catch(() => undefined), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Reads the heartbeats once and records a sample per worker whose heartbeat is new. */
  async sample(now = Date.now()): Promise<WorkerBeat[]> {
    const beats = await readWorkers(this.redis, this.prefix, now);
    for (const beat of beats) {
      const count = Object.values(beat.settled ?? {}).reduce((a, b) => a + b, 0);
      let list = this.samples.get(beat.name) ?? [];
      const last = list.at(-1);
      if (last && (count < last.count || beat.startedAt !== last.startedAt)) list = [];
      if (!last || last.at !== beat.at || list.length === 0) list.push({ at: beat.at, count, startedAt: beat.startedAt });
      while (list.length > 2 && now - list[0]!.at > this.keepMs) list.shift();
      this.samples.set(beat.name, list);
    }
    const live = new Set(beats.map((b) => b.name));
    for (const name of this.samples.keys()) if (!live.has(name)) this.samples.delete(name);
    return beats;
  }

  /** Every worker with a heartbeat, its rate now and over time. */
  async rates(now = Date.now()): Promise<WorkerRate[]> {
    const beats = await this.sample(now);
    return beats.map((beat) => {
      const list = this.samples.get(beat.name) ?? [];
      const series: RatePoint[] = [];
      for (let i = 1; i < list.length; i++) {
        const dt = (list[i]!.at - list[i - 1]!.at) / 1000;
        if (dt > 0) series.push({ at: list[i]!.at, rate: (list[i]!.count - list[i - 1]!.count) / dt });
      }
      const recent = list.filter((s) => beat.at - s.at <= 60_000);
      const first = recent[0];
      const last = recent.at(-1);
      const span = first && last ? (last.at - first.at) / 1000 : 0;
      const rate = span > 0 ? (last!.count - first!.count) / span : lifetimeRate(beat).perSecond;
      const kinds = Object.entries(beat.settled ?? {}).sort((a, b) => b[1] - a[1]);
      // A silent worker (killed, or cut off from Redis) settles nothing anyone can see: its last
      // minute of heartbeats is no rate of now (it stays listed until gc removes its heartbeat).
      return { beat, kind: kinds[0]?.[0] ?? 'units', now: beat.silent ? 0 : rate, series };
    });
  }
}

/** A series as an inline SVG polyline, `width` x `height`, scaled to its own maximum. */
export function sparkline(series: readonly RatePoint[], width = 160, height = 28): string {
  if (series.length < 2) return `<svg class="spark" width="${width}" height="${height}" role="img" aria-label="not enough samples yet"><line x1="0" y1="${height - 1}" x2="${width}" y2="${height - 1}" /></svg>`;
  const t0 = series[0]!.at;
  const span = Math.max(1, series.at(-1)!.at - t0);
  const max = Math.max(...series.map((p) => p.rate), 0.001);
  const points = series.map((p) => `${(((p.at - t0) / span) * (width - 2) + 1).toFixed(1)},${(height - 1 - (p.rate / max) * (height - 3)).toFixed(1)}`).join(' ');
  const label = `from ${series.length} samples; peak ${max.toFixed(2)} per second`;
  return `<svg class="spark" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${label}"><polyline points="${points}" /></svg>`;
}
