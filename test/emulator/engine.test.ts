/**
 * The timing model as a client measures it: continuous batching (throughput rises with
 * concurrency), FCFS waiting past maxNumSeqs, the best-rate formula, KV preemption, /metrics.
 * Margins are wide: the machine is small and shared.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { estimateBestRate, startEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.ts';
import { call, chatBody, metric, emulatorsForFile, parseMetrics } from './helpers.ts';

const { agent, emulator } = emulatorsForFile();

/** Closed loop: `concurrency` clients send requests back to back for `ms`; generated tokens per second. */
async function closedLoop(emu: Emulator, concurrency: number, ms: number, body: (i: number) => unknown): Promise<number> {
  const before = emu.stats().generationTokens;
  const t0 = performance.now();
  const deadline = t0 + ms;
  let n = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const r = await call(agent, `${emu.url}/v1/chat/completions`, { body: body(n++) });
        if (r.status !== 200) throw new Error(`status ${r.status}: ${r.text}`);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return (emu.stats().generationTokens - before) / seconds;
}

describe('continuous batching', () => {
  it('generates several times more tokens per second at concurrency 32 than at 1', async () => {
    const emu = await emulator({ speed: 10, outputTokensMin: 100, outputTokensMax: 100, prefillPerTokenMs: 0 });
    const one = await closedLoop(emu, 1, 1200, (i) => chatBody(`single ${i}`));
    const many = await closedLoop(emu, 32, 1200, (i) => chatBody(`many ${i}`));
    // Model: 1 seq -> 10/(20.2 ms) ~ 495 tok/s; 32 seqs -> 32*10/(26.4 ms) ~ 12 000 tok/s.
    expect(one).toBeGreaterThan(200);
    expect(one).toBeLessThan(600);
    expect(many / one).toBeGreaterThan(5);
    expect(emu.stats().maxRunning).toBeGreaterThanOrEqual(20);
  });

  it('matches the documented best-rate formula in a closed loop at maxNumSeqs', async () => {
    const options = { speed: 10, maxNumSeqs: 16, maxNumBatchedTokens: 512, outputTokensMin: 200, outputTokensMax: 200 };
    const emu = await emulator(options);
    const body = (i: number) => chatBody(`request ${i} ${'filler '.repeat(100)}`);
    const probe = await call(agent, `${emu.url}/tokenize`, { body: { messages: (body(0) as { messages: unknown }).messages } });
    const expected = estimateBestRate(options, { promptTokens: probe.json.count, outputTokens: 200, concurrency: 16 });
    expect(expected.limitedBy).toBe('concurrency');
    const measured = await closedLoop(emu, 16, 2500, body);
    expect(measured / expected.generatedTokensPerSec).toBeGreaterThan(0.6);
    expect(measured / expected.generatedTokensPerSec).toBeLessThan(1.15);
  });

  it('runs at most maxNumSeqs at once; the rest wait FCFS, visible in /metrics', async () => {
    const emu = await emulator({ speed: 10, maxNumSeqs: 4, outputTokensMin: 100, outputTokensMax: 100 });
    const finishedAt: number[] = [];
    const all = Array.from({ length: 10 }, (_, i) =>
      call(agent, `${emu.url}/v1/chat/completions`, { body: chatBody(`queued ${i}`) }).then((r) => {
        finishedAt.push(performance.now());
        return r.status;
      }),
    );
    let sawWaiting = 0;
    let sawRunning = 0;
    for (let k = 0; k < 20 && sawWaiting === 0; k++) {
      await new Promise((r) => setTimeout(r, 30));
      const m = parseMetrics((await call(agent, `${emu.url}/metrics`)).text);
      sawWaiting = Math.max(sawWaiting, metric(m, 'vllm:num_requests_waiting') ?? 0);
      sawRunning = Math.max(sawRunning, metric(m, 'vllm:num_requests_running') ?? 0);
    }
    expect(await Promise.all(all)).toEqual(Array(10).fill(200));
    expect(sawWaiting).toBeGreaterThan(0);
    expect(sawRunning).toBe(4);
    const s = emu.stats();
    expect(s.maxRunning).toBe(4);
    expect(s.maxWaiting).toBeGreaterThanOrEqual(5);
    // Same output length for all (100 steps of ~2.1 ms): they finish in waves of four, ~210 ms apart.
    const t = finishedAt.sort((a, b) => a - b);
    expect((t[3] as number) - (t[0] as number)).toBeLessThan(80);
    expect((t[4] as number) - (t[3] as number)).toBeGreaterThan(100);
    expect((t[8] as number) - (t[7] as number)).toBeGreaterThan(100);
  });

  it('preempts when the KV cache fills, and still finishes every request', async () => {
    const emu = await emulator({ speed: 20, maxModelLen: 2048, kvCacheTokens: 2048, outputTokensMin: 400, outputTokensMax: 400 });
    const text = (i: number) => `kv ${i} ${'lorem ipsum dolor sit amet '.repeat(100)}`;
    const results = await Promise.all(Array.from({ length: 3 }, (_, i) => call(agent, `${emu.url}/v1/chat/completions`, { body: chatBody(text(i)) })));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    const m = parseMetrics((await call(agent, `${emu.url}/metrics`)).text);
    expect(metric(m, 'vllm:num_preemptions_total')).toBeGreaterThan(0);
    expect(emu.stats().preemptions).toBeGreaterThan(0);
  });
});

describe('/metrics', () => {
  it("exposes every family with vLLM's names and labels, and counts what was served", async () => {
    const emu = await emulator({ speed: 50, outputTokensMin: 20, outputTokensMax: 40 });
    const replies = await Promise.all([0, 1, 2].map((i) => call(agent, `${emu.url}/v1/chat/completions`, { body: chatBody(`metrics ${i}`) })));
    const res = await call(agent, `${emu.url}/metrics`);
    expect(String(res.headers['content-type'])).toContain('text/plain');
    const m = parseMetrics(res.text);
    const labels = '{engine="0",model_name="docbatch/emulated-vl"}';
    for (const gauge of ['vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:kv_cache_usage_perc']) {
      expect(res.text).toContain(`# TYPE ${gauge} gauge`);
      expect(m.get(`${gauge}${labels}`)).toBe(0);
    }
    const prompt = replies.reduce((n, r) => n + r.json.usage.prompt_tokens, 0);
    const generated = replies.reduce((n, r) => n + r.json.usage.completion_tokens, 0);
    expect(m.get(`vllm:prompt_tokens_total${labels}`)).toBe(prompt);
    expect(m.get(`vllm:generation_tokens_total${labels}`)).toBe(generated);
    expect(m.get(`vllm:num_preemptions_total${labels}`)).toBe(0);
    for (const h of ['vllm:time_to_first_token_seconds', 'vllm:e2e_request_latency_seconds']) {
      expect(res.text).toContain(`# TYPE ${h} histogram`);
      expect(m.get(`${h}_count${labels}`)).toBe(3);
      expect(m.get(`${h}_bucket{engine="0",model_name="docbatch/emulated-vl",le="+Inf"}`)).toBe(3);
      expect(m.get(`${h}_sum${labels}`)).toBeGreaterThan(0);
    }
    expect(emu.stats()).toMatchObject({ promptTokens: prompt, generationTokens: generated, completed: 3, sequences: 3 });
  });
});
