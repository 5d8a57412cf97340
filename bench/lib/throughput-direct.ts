/**
 * The engine's own best rate on the workload: a closed loop of `concurrency` clients straight at
 * the emulator (no queue, no worker, no rendering: the requests were prepared before), each
 * sending the next unit's request as soon as its previous one is answered. With concurrency at
 * 2 × maxNumSeqs the engine always has a full queue, so what it generates is its capacity for
 * these prompts.
 */
import { EngineClient } from '../../src/engine/client.ts';
import type { BenchRequest } from './throughput-workload.ts';
import { Sampler, type Sample } from './throughput-sampler.ts';
import { steadyWindow, type SteadyWindow } from './throughput-window.ts';

export interface DirectOptions {
  engineUrl: string;
  requests: BenchRequest[];
  concurrency: number;
  warmupMs: number;
  measureMs: number;
  intervalMs: number;
  onSamples?: (samples: Sample[]) => void;
}

export interface DirectResult {
  window: SteadyWindow;
  completed: number;
  errors: Map<string, number>;
}

export async function runDirect(o: DirectOptions): Promise<DirectResult> {
  const client = new EngineClient({ url: o.engineUrl, connections: o.concurrency + 16, requestTimeoutMs: 30 * 60_000 });
  const sampler = new Sampler({ engineUrl: o.engineUrl, intervalMs: o.intervalMs });
  const stop = new AbortController();
  const errors = new Map<string, number>();
  let next = 0;
  let completed = 0;
  try {
    await client.model(AbortSignal.timeout(10_000));
    sampler.start();
    const loops = Array.from({ length: o.concurrency }, async () => {
      while (!stop.signal.aborted) {
        const i = next++;
        const request = o.requests[i % o.requests.length]!;
        try {
          await client.chat({ messages: request.messages, maxTokens: request.maxTokens, temperature: 0, requestId: `direct-${i}` }, stop.signal);
          completed++;
        } catch (err) {
          if (stop.signal.aborted) return;
          const code = (err as { code?: string }).code ?? 'unknown';
          errors.set(code, (errors.get(code) ?? 0) + 1);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    });
    // The clock starts at the first generated token, as in the pipeline.
    for (;;) {
      const first = sampler.samples.find((s) => s.generated > 0);
      if (first && performance.now() >= first.t + o.warmupMs + o.measureMs) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await sampler.sample();
    await sampler.close();
    stop.abort('measured');
    await Promise.allSettled(loops);
    o.onSamples?.(sampler.samples);
    return { window: steadyWindow(sampler.samples, { warmupMs: o.warmupMs, end: 'last' }), completed, errors };
  } finally {
    stop.abort('done');
    await sampler.close();
    await client.destroy();
  }
}
