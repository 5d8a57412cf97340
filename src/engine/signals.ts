/**
 * What the engine tells us about itself: /metrics (load) and /health (alive). The window
 * controller reads the first; a worker whose engine went away waits on the second.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineError } from './classify.ts';
import { parsePrometheus, type Sample } from './prometheus.ts';
import type { EngineHealth, EngineMetrics, Sum } from './types.ts';

/**
 * Metric names by engine. vLLM's current names first; `vllm:gpu_cache_usage_perc` is what
 * servers before late 2025 call the KV cache gauge. SGLang's equivalents where they exist; then
 * llama.cpp's server (`--metrics`: requests in its slots, requests deferred until a slot frees;
 * its KV gauge only in older builds) and TGI's (the batch running, the queue).
 */
const NAMES = {
  running: ['vllm:num_requests_running', 'sglang:num_running_reqs', 'llamacpp:requests_processing', 'tgi_batch_current_size'],
  waiting: ['vllm:num_requests_waiting', 'sglang:num_queue_reqs', 'llamacpp:requests_deferred', 'tgi_queue_size'],
  kv: ['vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc', 'sglang:token_usage', 'llamacpp:kv_cache_usage_ratio'],
  prompt: ['vllm:prompt_tokens_total', 'sglang:prompt_tokens_total', 'llamacpp:prompt_tokens_total'],
  generation: ['vllm:generation_tokens_total', 'sglang:generation_tokens_total', 'llamacpp:tokens_predicted_total'],
  preemptions: ['vllm:num_preemptions_total'],
  e2e: ['vllm:e2e_request_latency_seconds', 'sglang:e2e_request_latency_seconds'],
  ttft: ['vllm:time_to_first_token_seconds', 'sglang:time_to_first_token_seconds'],
} as const;

export interface ParseMetricsOptions {
  /**
   * The served model. Only used when the text carries several `model_name` values; then the
   * samples of this model are kept (all are summed when none matches, e.g. an alias).
   */
  modelName?: string;
}

/**
 * Reads an engine's /metrics text. Gauges and counters are summed over the `engine` label
 * (data-parallel engines behind one server); the KV cache use is the highest of them, since one
 * full engine is what preempts. Returns null when the text has neither a running nor a waiting
 * gauge (a server without vLLM's, SGLang's, llama.cpp's or TGI's metrics).
 */
export function parseEngineMetrics(text: string, options: ParseMetricsOptions = {}): EngineMetrics | null {
  const { samples } = parsePrometheus(text);
  const byName = new Map<string, Sample[]>();
  for (const s of samples) {
    const list = byName.get(s.name);
    if (list) list.push(s);
    else byName.set(s.name, [s]);
  }
  const keep = modelFilter(samples, options.modelName);
  const pick = (names: readonly string[]): Sample[] | null => {
    for (const name of names) {
      const list = byName.get(name);
      if (list && list.length > 0) return list.filter(keep);
    }
    return null;
  };
  const total = (names: readonly string[]): number | null => {
    const list = pick(names);
    return list === null ? null : list.reduce((acc, s) => acc + finite(s.value), 0);
  };
  const highest = (names: readonly string[]): number | null => {
    const list = pick(names);
    // A loop, not Math.max(...list): an engine's /metrics may carry any number of samples.
    return list === null || list.length === 0 ? null : list.reduce((max, s) => Math.max(max, finite(s.value)), -Infinity);
  };
  const histogram = (names: readonly string[]): Sum | null => {
    const sum = total(names.map((n) => `${n}_sum`));
    const count = total(names.map((n) => `${n}_count`));
    return sum === null || count === null ? null : { sum, count };
  };

  const running = total(NAMES.running);
  const waiting = total(NAMES.waiting);
  if (running === null && waiting === null) return null;
  return {
    running: running ?? 0,
    waiting: waiting ?? 0,
    kvCacheUsage: highest(NAMES.kv),
    promptTokensTotal: total(NAMES.prompt),
    generationTokensTotal: total(NAMES.generation),
    preemptionsTotal: total(NAMES.preemptions),
    e2eLatency: histogram(NAMES.e2e),
    ttft: histogram(NAMES.ttft),
  };
}

function finite(n: number): number {
  return Number.isFinite(n) ? n : 0;
}

function modelFilter(samples: Sample[], modelName: string | undefined): (s: Sample) => boolean {
  const models = new Set<string>();
  for (const s of samples) {
    const m = s.labels.model_name;
    if (m !== undefined && (s.name.startsWith('vllm:') || s.name.startsWith('sglang:'))) models.add(m);
  }
  if (models.size <= 1 || modelName === undefined || !models.has(modelName)) return () => true;
  return (s) => s.labels.model_name === undefined || s.labels.model_name === modelName;
}

// ---- waiting for /health ----

export interface HealthAttempt {
  /** 1-based. */
  attempt: number;
  health: EngineHealth;
  /** How long we sleep before the next probe (0 once up). */
  delayMs: number;
}

export interface WaitForHealthyOptions {
  signal?: AbortSignal;
  /** First backoff step. @defaultValue 500 */
  initialDelayMs?: number;
  /** Cap of the backoff step. @defaultValue 30_000 */
  maxDelayMs?: number;
  /** Give up after this long with ENGINE_DOWN. @defaultValue undefined (wait for as long as it takes) */
  timeoutMs?: number;
  /** Called after every probe (for logs: "engine dead, next probe in 4.1 s"). */
  onAttempt?: (attempt: HealthAttempt) => void;
  /** Source of jitter, 0..1. @defaultValue Math.random */
  random?: () => number;
}

/** Anything with a `health()`; an EngineClient is one. */
export interface HealthProbe {
  health(signal?: AbortSignal): Promise<EngineHealth>;
}

/**
 * Probes `/health` until it says 'up': capped exponential backoff with full jitter (each sleep
 * is uniform in [0, min(max, initial·2^n)]), so that a fleet of workers that lost the engine
 * together does not knock on it in lockstep when it comes back. Throws ABORTED on the signal and
 * ENGINE_DOWN after `timeoutMs`.
 */
export async function waitForHealthy(probe: HealthProbe, options: WaitForHealthyOptions = {}): Promise<void> {
  const initial = positive('initialDelayMs', options.initialDelayMs ?? 500);
  const max = positive('maxDelayMs', options.maxDelayMs ?? 30_000);
  const random = options.random ?? Math.random;
  const { signal } = options;
  const started = Date.now();
  const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : started + options.timeoutMs;
  let last: EngineHealth = 'unknown';
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) throw aborted(signal);
    last = await probe.health(signal);
    if (last === 'up') {
      options.onAttempt?.({ attempt, health: last, delayMs: 0 });
      return;
    }
    const step = Math.min(max, initial * 2 ** Math.min(attempt - 1, 30));
    const delayMs = Math.min(Math.round(random() * step), Math.max(0, deadline - Date.now()));
    options.onAttempt?.({ attempt, health: last, delayMs });
    if (Date.now() >= deadline) {
      throw new EngineError('ENGINE_DOWN', `engine not healthy after ${Date.now() - started} ms (last: ${last})`);
    }
    try {
      await sleep(delayMs, undefined, signal ? { signal } : undefined);
    } catch (err) {
      if (signal?.aborted) throw aborted(signal);
      throw err;
    }
  }
}

function aborted(signal: AbortSignal): EngineError {
  return new EngineError('ABORTED', 'waiting for the engine was aborted', { cause: signal.reason });
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new TypeError(`${name} must be a number >= 0, got ${value}`);
  return value;
}
