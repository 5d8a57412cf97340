/**
 * GET /metrics in Prometheus text format with vLLM's metric names, labels and buckets, rendered
 * by hand from one engine's counters (a restarted engine is a new process: its counters start at 0).
 */

/** vLLM's buckets for time to first token, in seconds. */
export const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];
/** vLLM's buckets for end-to-end request latency, in seconds. */
export const E2E_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];

export class Histogram {
  readonly buckets: readonly number[];
  readonly counts: number[];
  count = 0;
  sum = 0;

  constructor(buckets: readonly number[]) {
    this.buckets = buckets;
    this.counts = buckets.map(() => 0);
  }

  observe(value: number): void {
    this.count++;
    this.sum += value;
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) this.counts[i] = (this.counts[i] ?? 0) + 1;
  }
}

/** What one engine (one "process") has counted since it started. */
export interface EngineCounters {
  promptTokens: number;
  generationTokens: number;
  preemptions: number;
  success: { stop: number; length: number; abort: number };
  ttft: Histogram;
  e2e: Histogram;
}

export function newCounters(): EngineCounters {
  return {
    promptTokens: 0,
    generationTokens: 0,
    preemptions: 0,
    success: { stop: 0, length: 0, abort: 0 },
    ttft: new Histogram(TTFT_BUCKETS),
    e2e: new Histogram(E2E_BUCKETS),
  };
}

export interface EngineGauges {
  running: number;
  waiting: number;
  kvUsage: number;
}

/** Python's prometheus_client prints floats: `3.0`, `0.25`, `+Inf`. */
function num(v: number): string {
  if (v === Infinity) return '+Inf';
  return Number.isInteger(v) ? `${v}.0` : String(v);
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function renderMetrics(model: string, gauges: EngineGauges, c: EngineCounters, startedAtSec: number): string {
  const base = `engine="0",model_name="${escapeLabel(model)}"`;
  const out: string[] = [];
  const family = (name: string, type: string, help: string): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };
  const gauge = (name: string, help: string, value: number): void => {
    family(name, 'gauge', help);
    out.push(`${name}{${base}} ${num(value)}`);
  };
  const counter = (name: string, help: string, value: number): void => {
    family(`${name}_total`, 'counter', help);
    out.push(`${name}_total{${base}} ${num(value)}`, `${name}_created{${base}} ${num(startedAtSec)}`);
  };
  const histogram = (name: string, help: string, h: Histogram): void => {
    family(name, 'histogram', help);
    let cumulative = 0;
    h.buckets.forEach((b, i) => {
      cumulative += h.counts[i] ?? 0;
      out.push(`${name}_bucket{${base},le="${num(b)}"} ${num(cumulative)}`);
    });
    out.push(`${name}_bucket{${base},le="+Inf"} ${num(h.count)}`, `${name}_count{${base}} ${num(h.count)}`, `${name}_sum{${base}} ${num(h.sum)}`);
    out.push(`${name}_created{${base}} ${num(startedAtSec)}`);
  };

  gauge('vllm:num_requests_running', 'Number of requests in model execution batches.', gauges.running);
  gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.', gauges.waiting);
  gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.', gauges.kvUsage);
  counter('vllm:num_preemptions', 'Cumulative number of preemption from the engine.', c.preemptions);
  counter('vllm:prompt_tokens', 'Number of prefill tokens processed.', c.promptTokens);
  counter('vllm:generation_tokens', 'Number of generation tokens processed.', c.generationTokens);
  family('vllm:request_success_total', 'counter', 'Count of successfully processed requests.');
  for (const [reason, value] of Object.entries(c.success)) {
    out.push(`vllm:request_success_total{${base},finished_reason="${reason}"} ${num(value)}`);
  }
  histogram('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', c.ttft);
  histogram('vllm:e2e_request_latency_seconds', 'Histogram of e2e request latency in seconds.', c.e2e);
  return `${out.join('\n')}\n`;
}
