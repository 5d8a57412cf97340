/**
 * What bench/throughput.ts watches while a scenario runs, every `intervalMs`: the engine's own
 * counters (`GET /emulator/stats`, which every profile has, /metrics or not: generated tokens,
 * running, waiting, KV cache, preemptions, answers), each worker's /metrics (window, in flight,
 * prepared units waiting at the gate), the `infer` queue's waiting jobs, and the machine's CPU
 * (from /proc/stat). For the trace and the means of a run; its figure is the engine's span
 * (throughput-span.ts).
 */
import { readFileSync } from 'node:fs';
import type { EmulatorStats } from '../../src/emulator/index.ts';
import { parsePrometheus } from '../../src/engine/prometheus.ts';

export interface WorkerSample {
  window: number;
  inFlight: number;
  gateWaiting: number;
}

export interface Sample {
  /** ms, performance.now() of this process. */
  t: number;
  generated: number;
  running: number;
  waiting: number;
  kv: number;
  preemptions: number;
  /** Inference requests the engine has answered. */
  completed: number;
  workers: WorkerSample[];
  /** Units waiting in the `infer` queue (null: no queue in this scenario). */
  queued: number | null;
  /** /proc/stat jiffies: busy and total, machine-wide. */
  cpuBusy: number;
  cpuTotal: number;
}

export interface SamplerParts {
  engineUrl: string;
  /** Worker metrics URLs (`http://127.0.0.1:P/metrics`). */
  workers?: string[];
  /** Units still waiting in the queue. */
  queued?: () => Promise<number>;
  intervalMs: number;
}

export class Sampler {
  readonly samples: Sample[] = [];
  private readonly parts: SamplerParts;
  private readonly stop = new AbortController();
  private loop: Promise<void> | null = null;
  private closing: Promise<void> | null = null;

  constructor(parts: SamplerParts) {
    this.parts = parts;
  }

  start(): void {
    this.loop ??= (async () => {
      while (!this.stop.signal.aborted) {
        const began = performance.now();
        await this.sample().catch(() => {});
        const wait = this.parts.intervalMs - (performance.now() - began);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    })();
  }

  /** One sample now (also used at the very end of a scenario). */
  async sample(): Promise<Sample | null> {
    const [engine, workers, queued] = await Promise.all([
      readStats(this.parts.engineUrl),
      Promise.all((this.parts.workers ?? []).map(readWorker)),
      this.parts.queued ? this.parts.queued() : Promise.resolve(null),
    ]);
    if (!engine) return null;
    const cpu = readCpu();
    const sample: Sample = {
      t: performance.now(),
      generated: engine.generationTokens,
      running: engine.running,
      waiting: engine.waiting,
      kv: engine.kvUsage,
      preemptions: engine.preemptions,
      completed: engine.completed,
      workers: workers.filter((w): w is WorkerSample => w !== null),
      queued,
      cpuBusy: cpu.busy,
      cpuTotal: cpu.total,
    };
    this.samples.push(sample);
    return sample;
  }

  /** Stops sampling; idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop.abort();
      await this.loop;
    })();
    return this.closing;
  }
}

/** The emulator's counters (its control route, present with or without /metrics); null on failure. */
export async function readStats(engineUrl: string): Promise<EmulatorStats | null> {
  try {
    const res = await fetch(`${engineUrl}/emulator/stats`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) {
      await res.arrayBuffer();
      return null;
    }
    return (await res.json()) as EmulatorStats;
  } catch {
    return null;
  }
}

async function readWorker(url: string): Promise<WorkerSample | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
    const text = await res.text();
    const values = new Map(parsePrometheus(text).samples.map((s) => [s.name, s.value]));
    return {
      window: values.get('docbatch_worker_window') ?? 0,
      inFlight: values.get('docbatch_worker_in_flight') ?? 0,
      gateWaiting: values.get('docbatch_worker_gate_waiting') ?? 0,
    };
  } catch {
    return null;
  }
}

/** Machine-wide CPU jiffies (Linux); zeros elsewhere. */
function readCpu(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}
