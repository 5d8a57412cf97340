import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineClient, EngineError } from '../../src/engine/client.ts';
import { parsePrometheus } from '../../src/engine/prometheus.ts';
import { parseEngineMetrics, waitForHealthy, type HealthAttempt } from '../../src/engine/signals.ts';
import { SGLANG, UNRELATED, VLLM_OLD, VLLM_TWO_ENGINES, VLLM_TWO_MODELS } from './metrics-fixtures.ts';
import { closedPort, json, startScripted, type Scripted } from './scripted-server.ts';

describe('parsePrometheus', () => {
  it('reads types, labels with escapes, NaN, timestamps, and skips garbage', () => {
    const { samples, types } = parsePrometheus(VLLM_OLD);
    expect(types.get('vllm:gpu_cache_usage_perc')).toBe('gauge');
    const waiting = samples.find((s) => s.name === 'vllm:num_requests_waiting')!;
    expect(waiting.labels).toEqual({ model_name: 'llava', note: 'say "hi", ok\n' });
    expect(waiting.value).toBe(2);
    expect(samples.find((s) => s.name === 'vllm:gpu_cache_usage_perc')!.value).toBe(0.25);
    expect(Number.isNaN(samples.find((s) => s.name === 'vllm:num_preemptions_total')!.value)).toBe(true);
    expect(samples.some((s) => s.name === 'this')).toBe(false);
    expect(samples).toHaveLength(5);
  });

  it('reads +Inf buckets and exponents', () => {
    const { samples, types } = parsePrometheus(VLLM_TWO_ENGINES);
    expect(types.get('vllm:e2e_request_latency_seconds')).toBe('histogram');
    const inf = samples.find((s) => s.name === 'vllm:time_to_first_token_seconds_bucket' && s.labels.le === '+Inf');
    expect(inf?.value).toBe(400);
    expect(samples.find((s) => s.name === 'vllm:prompt_tokens_total')!.value).toBe(1_500_000);
  });
});

describe('parseEngineMetrics', () => {
  it('sums gauges, counters and histograms over engines; KV use is the fuller engine', () => {
    expect(parseEngineMetrics(VLLM_TWO_ENGINES)).toEqual({
      running: 72,
      waiting: 3,
      kvCacheUsage: 0.71,
      promptTokensTotal: 2_000_000,
      generationTokensTotal: 400_000,
      preemptionsTotal: 3,
      e2eLatency: { sum: 5000, count: 500 },
      ttft: { sum: 150, count: 500 },
    });
  });

  it('keeps only the asked model when several are served', () => {
    expect(parseEngineMetrics(VLLM_TWO_MODELS, { modelName: 'model-a' })).toMatchObject({ running: 10, waiting: 1 });
    expect(parseEngineMetrics(VLLM_TWO_MODELS, { modelName: 'model-b' })).toMatchObject({ running: 90, waiting: 50 });
    // An unknown name (an alias) cannot be matched: everything counts.
    expect(parseEngineMetrics(VLLM_TWO_MODELS, { modelName: 'alias' })).toMatchObject({ running: 100, waiting: 51 });
  });

  it("reads older vLLM's gpu_cache_usage_perc and SGLang's names", () => {
    expect(parseEngineMetrics(VLLM_OLD)).toMatchObject({ running: 4, waiting: 2, kvCacheUsage: 0.25, e2eLatency: null, ttft: null });
    expect(parseEngineMetrics(SGLANG)).toMatchObject({ running: 12, waiting: 7, kvCacheUsage: 0.4, promptTokensTotal: 1000 });
  });

  // llama.cpp's server (--metrics) and TGI: their own names for the requests running and waiting.
  it("reads llama.cpp's and TGI's names", () => {
    const llama = [
      '# TYPE llamacpp:requests_processing gauge', 'llamacpp:requests_processing 4',
      '# TYPE llamacpp:requests_deferred gauge', 'llamacpp:requests_deferred 46',
      'llamacpp:prompt_tokens_total 5120', 'llamacpp:tokens_predicted_total 17029', 'llamacpp:n_busy_slots_per_decode 3.87', '',
    ].join('\n');
    expect(parseEngineMetrics(llama)).toMatchObject({ running: 4, waiting: 46, kvCacheUsage: null, promptTokensTotal: 5120, generationTokensTotal: 17029 });
    const tgi = ['# TYPE tgi_batch_current_size gauge', 'tgi_batch_current_size 8', '# TYPE tgi_queue_size gauge', 'tgi_queue_size 3', ''].join('\n');
    expect(parseEngineMetrics(tgi)).toMatchObject({ running: 8, waiting: 3 });
  });

  it('reads a KV gauge with 200 000 series (no Math.max(...list): it threw RangeError past ~125 000)', () => {
    const lines = ['vllm:num_requests_running 1', 'vllm:num_requests_waiting 0'];
    for (let k = 0; k < 200_000; k++) lines.push(`vllm:kv_cache_usage_perc{engine="${k}"} ${k === 123_456 ? 0.9 : 0.1}`);
    expect(parseEngineMetrics(`${lines.join('\n')}\n`)).toMatchObject({ running: 1, kvCacheUsage: 0.9 });
  });

  it('is null for a text without engine gauges', () => {
    expect(parseEngineMetrics(UNRELATED)).toBeNull();
    expect(parseEngineMetrics('')).toBeNull();
  });
});

describe('health, metrics and tokenize against scripted servers', () => {
  let server: Scripted;
  let mode: 'vllm' | 'ollama' | 'gateway' | 'dead' | 'error500' | 'hang' | 'vercel-gone' = 'vllm';
  const clients: EngineClient[] = [];
  const make = (options: { probeTimeoutMs?: number } = {}) => {
    const c = new EngineClient({ url: server.url, model: 'Qwen/Qwen2.5-VL-7B-Instruct', ...options });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    server = await startScripted((_req, res, seen) => {
      if (mode === 'hang') return;
      if (mode === 'dead') return json(res, 503, '');
      if (mode === 'vercel-gone') {
        // Vercel's answer on every path of a host whose deployment is gone (deleted, redeployed).
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-vercel-error': 'DEPLOYMENT_NOT_FOUND' });
        return res.end('The deployment could not be found on Vercel.\n\nDEPLOYMENT_NOT_FOUND\n');
      }
      if (mode === 'error500') return json(res, 500, { error: { message: 'EngineCore encountered an issue.', type: 'InternalServerError', code: 500 } });
      if (mode === 'gateway') {
        // A gateway whose /health is an admin route our key may not use.
        if (seen.path === '/health') return json(res, 401, { error: { message: 'Authentication Error, admin only route', type: 'auth_error', param: 'None', code: '401' } });
        if (seen.path === '/v1/models') return json(res, 200, { object: 'list', data: [{ id: 'm', object: 'model' }] });
      }
      if (mode === 'ollama') {
        // Ollama: no /health, /metrics or /tokenize; its 404 is plain text.
        if (seen.path === '/v1/models') return json(res, 200, { object: 'list', data: [{ id: 'llava', object: 'model' }] });
        res.writeHead(404, { 'content-type': 'text/plain' });
        return res.end('404 page not found');
      }
      if (seen.path === '/health') {
        res.writeHead(200);
        return res.end();
      }
      if (seen.path === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        return res.end(VLLM_TWO_ENGINES);
      }
      if (seen.path === '/tokenize') {
        const body = JSON.parse(seen.body) as { prompt?: string; messages?: unknown[] };
        return json(res, 200, { count: body.prompt ? body.prompt.length : 1234, max_model_len: 32768, tokens: [] });
      }
      json(res, 404, { detail: 'Not Found' });
    });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.destroy()));
    await server.close();
  });

  it('vLLM: health up, metrics parsed, tokenize counts', async () => {
    mode = 'vllm';
    const client = make();
    expect(await client.health()).toBe('up');
    expect(await client.metrics()).toMatchObject({ running: 72, waiting: 3 });
    expect(await client.tokenize({ prompt: 'abcde' })).toBe(5);
    expect(await client.tokenize({ messages: [{ role: 'user', content: 'hi' }] })).toBe(1234);
    const tokenize = server.seen.filter((s) => s.path === '/tokenize').map((s) => JSON.parse(s.body));
    expect(tokenize[0]).toEqual({ model: 'Qwen/Qwen2.5-VL-7B-Instruct', prompt: 'abcde' });
    expect(tokenize[1].messages).toHaveLength(1);
  });

  it('a dead engine: 503 and 500 are "dead"', async () => {
    const client = make();
    mode = 'dead';
    expect(await client.health()).toBe('dead');
    mode = 'error500';
    expect(await client.health()).toBe('dead');
    mode = 'vllm';
  });

  it('Ollama: health falls back to /v1/models; no metrics, no tokenize (asked once)', async () => {
    mode = 'ollama';
    const client = make();
    server.seen.length = 0;
    expect(await client.health()).toBe('up');
    expect(await client.health()).toBe('up');
    expect(await client.metrics()).toBeNull();
    expect(await client.metrics()).toBeNull();
    expect(await client.tokenize({ prompt: 'x' })).toBeNull();
    expect(await client.tokenize({ prompt: 'x' })).toBeNull();
    expect(server.seen.map((s) => s.path)).toEqual(['/health', '/v1/models', '/v1/models', '/metrics', '/tokenize']);
    mode = 'vllm';
  });

  it('a gateway whose /health refuses our key (401): health is asked of /v1/models from then on', async () => {
    mode = 'gateway';
    const client = make();
    server.seen.length = 0;
    expect(await client.health()).toBe('up');
    expect(await client.health()).toBe('up');
    expect(server.seen.map((s) => s.path)).toEqual(['/health', '/v1/models', '/v1/models']);
    mode = 'vllm';
  });

  it('a host whose deployment is gone for a while (Vercel 404 DEPLOYMENT_NOT_FOUND) is not a server without /tokenize or /metrics: both are read again once it is back', async () => {
    const client = make();
    mode = 'vercel-gone';
    // The answer is about ENGINE_URL's host, not the route: the caller hears it (context-room.ts
    // counts without the engine; the monitor's metrics read is no verdict), nothing is remembered.
    await expect(client.tokenize({ prompt: 'abcde' })).rejects.toMatchObject({ code: 'ENGINE_UNSUPPORTED', wrongUrl: true });
    await expect(client.metrics()).rejects.toMatchObject({ code: 'ENGINE_UNSUPPORTED', wrongUrl: true });
    expect(client.metricsMissing).toBeNull();
    mode = 'vllm';
    expect(await client.tokenize({ prompt: 'abcde' })).toBe(5);
    expect(await client.metrics()).toMatchObject({ running: 72, waiting: 3 });
  });

  it('unreachable: refused, or no answer within the probe timeout', async () => {
    const refused = new EngineClient({ url: `http://127.0.0.1:${await closedPort()}` });
    clients.push(refused);
    expect(await refused.health()).toBe('unreachable');
    mode = 'hang';
    expect(await make({ probeTimeoutMs: 200 }).health()).toBe('unreachable');
    mode = 'vllm';
  });

  it('health throws ABORTED when the caller aborts', async () => {
    mode = 'hang';
    const err = await make()
      .health(AbortSignal.timeout(100))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('ABORTED');
    mode = 'vllm';
  });
});

describe('waitForHealthy', () => {
  it('waits through refused, then 503, until 200 — with capped, jittered backoff', async () => {
    const port = await closedPort();
    const client = new EngineClient({ url: `http://127.0.0.1:${port}` });
    let server: Promise<Scripted> | undefined;
    let deadSeen = 0;
    const attempts: HealthAttempt[] = [];
    try {
      await waitForHealthy(client, {
        initialDelayMs: 20,
        maxDelayMs: 80,
        random: () => 1, // the top of each jitter range, to check the cap
        onAttempt: (a) => {
          attempts.push(a);
          if (a.health === 'dead') deadSeen++;
          // Refused twice; then the server listens, answering 503 until it was seen dead twice.
          if (a.attempt === 2) {
            server = startScripted(
              (_req, res) => {
                if (deadSeen >= 2) {
                  res.writeHead(200);
                  res.end();
                } else json(res, 503, '');
              },
              { port },
            );
          }
        },
      });
      const states = attempts.map((a) => a.health);
      expect(states.slice(0, 2)).toEqual(['unreachable', 'unreachable']);
      expect(states.filter((s) => s === 'dead')).toHaveLength(2);
      expect(states.at(-1)).toBe('up');
      const delays = attempts.slice(0, -1).map((a) => a.delayMs);
      expect(delays.slice(0, 3)).toEqual([20, 40, 80]);
      expect(Math.max(...delays)).toBe(80);
    } finally {
      await client.destroy();
      await (await server)?.close();
    }
  });

  it('stops on abort with ABORTED, and gives up after timeoutMs with ENGINE_DOWN', async () => {
    const client = new EngineClient({ url: `http://127.0.0.1:${await closedPort()}` });
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      const aborted = await waitForHealthy(client, { signal: controller.signal, initialDelayMs: 10, maxDelayMs: 20 }).catch((e: unknown) => e);
      expect((aborted as EngineError).code).toBe('ABORTED');
      const started = Date.now();
      const gaveUp = await waitForHealthy(client, { timeoutMs: 150, initialDelayMs: 10, maxDelayMs: 40 }).catch((e: unknown) => e);
      expect((gaveUp as EngineError).code).toBe('ENGINE_DOWN');
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await client.destroy();
    }
  });
});

