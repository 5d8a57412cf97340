/**
 * The client, the signals and the window against the project's vLLM emulator: the happy path,
 * server look-alikes, and a small closed loop through an engine that dies above a load.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EngineClient, EngineError, type ChatMessage } from '../../src/engine/client.ts';
import { waitForHealthy } from '../../src/engine/signals.ts';
import { WindowController } from '../../src/engine/window.ts';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.ts';

const PNG =
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
const page = (i: number): ChatMessage[] => [
  { role: 'user', content: [{ type: 'text', text: `Transcribe page ${i}.` }, { type: 'image_url', image_url: { url: PNG } }] },
];

let emulator: Emulator | undefined;
let client: EngineClient | undefined;
async function start(options: Partial<EmulatorOptions>, clientOptions: { apiKey?: string } = {}) {
  emulator = await startEmulator({ speed: 50, ...options });
  client = new EngineClient({ url: `${emulator.url}/v1`, requestTimeoutMs: 20_000, ...clientOptions });
  return { emulator, client };
}
afterEach(async () => {
  await client?.destroy();
  await emulator?.close();
  client = undefined;
  emulator = undefined;
});

describe('against the emulator', () => {
  it('discovers the model, chats, counts tokens, reads metrics and health', async () => {
    const { client } = await start({ model: 'emu/vl', maxModelLen: 8192 });
    expect(await client.model()).toEqual({ id: 'emu/vl', maxModelLen: 8192 });
    expect(await client.health()).toBe('up');
    const result = await client.chat({ messages: page(1), maxTokens: 40, requestId: 'd1-p1' });
    expect(result.text.length).toBeGreaterThan(0);
    expect(result.model).toBe('emu/vl');
    expect(result.id).toContain('d1-p1');
    expect(result.usage.completionTokens).toBeGreaterThan(0);
    expect(await client.tokenize({ prompt: 'one two three' })).toBeGreaterThan(0);
    const metrics = await client.metrics();
    expect(metrics).not.toBeNull();
    expect(metrics!.generationTokensTotal).toBeGreaterThanOrEqual(result.usage.completionTokens!);
    expect(metrics!.e2eLatency?.count).toBe(1);
  });

  it('an over-long prompt is CONTEXT_TOO_LONG with the numbers', async () => {
    const { client } = await start({ maxModelLen: 256 });
    const err = (await client.chat({ messages: [{ role: 'user', content: 'word '.repeat(400) }], maxTokens: 64 }).catch((e: unknown) => e)) as EngineError;
    expect(err.code).toBe('CONTEXT_TOO_LONG');
    expect(err.context?.maxContextLength).toBe(256);
  });

  it('a wrong API key is ENGINE_UNAUTHORIZED naming ENGINE_API_KEY; the right one works', async () => {
    const { client } = await start({ apiKey: 'right' }, { apiKey: 'wrong' });
    const err = (await client.chat({ messages: page(1), maxTokens: 8 }).catch((e: unknown) => e)) as EngineError;
    expect(err.code).toBe('ENGINE_UNAUTHORIZED');
    expect(err.status).toBe(401);
    expect(err.message).toContain('ENGINE_API_KEY');
    const good = new EngineClient({ url: emulator!.url, apiKey: 'right' });
    try {
      expect((await good.chat({ messages: page(1), maxTokens: 8 })).text).not.toBe('');
    } finally {
      await good.destroy();
    }
  });

  it('Ollama look-alike: no /health, /metrics, /tokenize; over its queue it is ENGINE_BUSY', async () => {
    const { client } = await start({ errorStyle: 'ollama', noMetrics: true, noTokenize: true, noHealth: true, maxPending: 2, model: 'llava' });
    expect(await client.health()).toBe('up');
    expect(await client.metrics()).toBeNull();
    expect(await client.tokenize({ prompt: 'x' })).toBeNull();
    const results = await Promise.allSettled([1, 2, 3, 4, 5, 6].map((i) => client.chat({ messages: page(i), maxTokens: 200 })));
    const codes = results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as EngineError).code));
    expect(codes).toContain('ok');
    expect(codes).toContain('ENGINE_BUSY');
  });

  it('a transformers-style per-request OOM is ENGINE_OOM without a death', async () => {
    const { client, emulator } = await start({ oomMode: 'request', errorStyle: 'flat', oomAtConcurrentImages: 1 });
    const results = await Promise.allSettled([1, 2, 3, 4].map((i) => client.chat({ messages: page(i), maxTokens: 100 })));
    const errors = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as EngineError);
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) expect([e.code, e.engineDead]).toEqual(['ENGINE_OOM', false]);
    expect(await client.health()).toBe('up');
    expect(emulator.stats().deaths).toBe(0);
  });

  it('closed loop: an engine that dies above 4 concurrent images — every unit done, window held below the limit', async () => {
    const limit = 4;
    const { client, emulator } = await start({ oomAtConcurrentImages: limit, deathExitMs: 100, restartDelayMs: 300 });
    const window = new WindowController({ initial: 8, max: 32, cleanIntervalMs: 400, ceilingHoldMs: 3_000, decisionIntervalMs: 100 });
    const pending = Array.from({ length: 80 }, (_, i) => i);
    const done = new Set<number>();
    let inFlight = 0;
    let down: Promise<void> | null = null;
    const wake = new Set<() => void>();
    const notify = () => {
      for (const w of wake) w();
      wake.clear();
    };
    const engineDown = () => {
      window.onEngineDown(performance.now());
      down ??= waitForHealthy(client, { initialDelayMs: 20, maxDelayMs: 100 }).then(() => {
        down = null;
        window.onEngineUp(performance.now());
        notify();
      });
    };
    const send = async (unit: number) => {
      const sentAt = performance.now();
      try {
        const result = await client.chat({ messages: page(unit), maxTokens: 60, requestId: `u${unit}` });
        window.onCompleted(performance.now(), result.latencyMs);
        done.add(unit);
      } catch (caught) {
        const err = caught as EngineError;
        if (err.code === 'ENGINE_OOM' || err.engineDead) window.onOom(performance.now(), sentAt);
        if (err.code === 'ENGINE_DOWN' || err.engineDead) engineDown();
        else if (err.code !== 'ENGINE_OOM') throw err;
        pending.push(unit);
      } finally {
        inFlight--;
        window.setInFlight(inFlight);
        notify();
      }
    };
    const poll = setInterval(() => {
      const now = performance.now();
      window.tick(now);
      if (!down) {
        client.metrics().then(
          (m) => m && window.onMetrics(performance.now(), m),
          () => {},
        );
      }
      notify();
    }, 50);
    const sizes: number[] = [];
    const running = new Set<Promise<void>>();
    try {
      while (done.size < 80) {
        if (window.canSend && inFlight < window.size && pending.length > 0) {
          inFlight++;
          window.setInFlight(inFlight);
          sizes.push(window.size);
          const p = send(pending.shift()!);
          running.add(p);
          void p.finally(() => running.delete(p));
          continue;
        }
        await new Promise<void>((resolve) => wake.add(resolve));
      }
      await Promise.all(running);
    } finally {
      clearInterval(poll);
    }
    const stats = emulator.stats();
    expect(done.size).toBe(80);
    expect(stats.deaths).toBeGreaterThanOrEqual(1);
    // The first death halves 8 → 4; the ceiling keeps the window below the failing load after that.
    expect(stats.deaths).toBeLessThanOrEqual(3);
    expect(window.snapshot().ooms).toBe(stats.deaths);
    expect(window.size).toBeLessThanOrEqual(limit);
    expect(sizes.at(-1)).toBeLessThanOrEqual(limit);
  }, 30_000);
});
