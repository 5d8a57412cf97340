/**
 * What bench/throughput.ts watches while a scenario runs, every `intervalMs`: the engine's
 * /metrics (generated tokens, running, waiting, KV cache), each worker's /metrics (window, in
 * flight, prepared units waiting at the gate), the `infer` queue's waiting jobs, and the
 * machine's CPU (from /proc/stat). The steady window is cut out of these samples afterwards
 * (throughput-window.ts), so the tokens of the window are two real scrapes of the engine's
 * `vllm:generation_tokens_total`, one at each end.
 */
import { readFileSync } from 'node:fs';
import { EngineClient } from '../../src/engine/client.ts';
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
  private readonly client: EngineClient;
  private readonly stop = new AbortController();
  private loop: Promise<void> | null = null;
  private closing: Promise<void> | null = null;

  constructor(parts: SamplerParts) {
    this.parts = parts;
    this.client = new EngineClient({ url: parts.engineUrl, probeTimeoutMs: 5000, connections: 4 });
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
      this.client.metrics(AbortSignal.timeout(5000)),
      Promise.all((this.parts.workers ?? []).map(readWorker)),
      this.parts.queued ? this.parts.queued() : Promise.resolve(null),
    ]);
    if (!engine) return null;
    const cpu = readCpu();
    const sample: Sample = {
      t: performance.now(),
      generated: engine.generationTokensTotal ?? 0,
      running: engine.running,
      waiting: engine.waiting,
      kv: engine.kvCacheUsage ?? 0,
      preemptions: engine.preemptionsTotal ?? 0,
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
      await this.client.close();
    })();
    return this.closing;
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
