/**
 * The engine's own best on the workload: a closed loop of `concurrency` clients straight at a
 * fresh engine (no queue, no worker, no rendering: the requests were prepared before), each
 * sending the next unit's request, in unit order, as soon as its previous one is answered, until
 * every unit has been sent once. The figure is the engine's span, first arrival to last answer
 * (throughput-span.ts): the ramp (the first `concurrency` prompts arriving at once) and the tail
 * included, as for the pipeline.
 */
import { EngineClient } from '../../src/engine/client.ts';
import type { BenchRequest } from './throughput-workload.ts';
import { readStats, Sampler, type Sample } from './throughput-sampler.ts';
import { runFigure, type RunFigure } from './throughput-span.ts';

export interface DirectOptions {
  engineUrl: string;
  requests: readonly BenchRequest[];
  concurrency: number;
  intervalMs: number;
  onSamples?: (samples: Sample[]) => void;
}

export interface DirectResult {
  figure: RunFigure;
  /** Failed sends by code (each is sent again). */
  errors: Map<string, number>;
}

export async function runDirect(o: DirectOptions): Promise<DirectResult> {
  const client = new EngineClient({ url: o.engineUrl, connections: o.concurrency + 16, requestTimeoutMs: 30 * 60_000 });
  const sampler = new Sampler({ engineUrl: o.engineUrl, intervalMs: o.intervalMs });
  const errors = new Map<string, number>();
  let next = 0;
  try {
    await client.model(AbortSignal.timeout(10_000));
    sampler.start();
    const loops = Array.from({ length: Math.min(o.concurrency, o.requests.length) }, async () => {
      for (let i = next++; i < o.requests.length; i = next++) {
        const request = o.requests[i]!;
        for (let attempt = 0; ; attempt++) {
          try {
            await client.chat({ messages: request.messages, maxTokens: request.maxTokens, temperature: 0, requestId: `direct-${i}-${attempt}` });
            break;
          } catch (err) {
            const code = (err as { code?: string }).code ?? 'unknown';
            errors.set(code, (errors.get(code) ?? 0) + 1);
            if (attempt >= 5) throw err;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      }
    });
    await Promise.all(loops);
    await sampler.sample();
    await sampler.close();
    o.onSamples?.(sampler.samples);
    const stats = await readStats(o.engineUrl);
    if (!stats) throw new Error('the engine did not answer /emulator/stats');
    return { figure: runFigure(stats, sampler.samples), errors };
  } finally {
    await sampler.close();
    await client.destroy();
  }
}
