/**
 * The window against an engine without /metrics whose answers carry their token counts only
 * some of the time (`docbatch engine --profile no-metrics --omit-usage absent
 * --omit-usage-share 0.5`), over real HTTP: the window is fed as src/infer/dispatch.ts feeds it
 * (`onCompleted(now, latency, usage.completionTokens ?? undefined)`). Latency is compared in one
 * unit at a time: ms per output token for answers with a count, ms for those without.
 *
 * The engine here has room for far more than the window's maximum (256 seats, a step that costs
 * the same whatever runs, replies all of one length): latency never climbs, so the window has
 * no reason to be cut and grows to its maximum.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EngineClient } from '../../src/engine/client.ts';
import { WindowController } from '../../src/engine/window.ts';
import { ENGINE_PROFILES, type EmulatorOptions } from '../../src/emulator/options.ts';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';

let emulator: Emulator | undefined;
let client: EngineClient | undefined;
afterEach(async () => {
  await client?.destroy();
  await emulator?.close();
  client = undefined;
  emulator = undefined;
});

const REPLY_TOKENS = 60;

/** A closed loop of `answers` requests through the window; the window's moves, with their reasons. */
async function run(options: Partial<EmulatorOptions>, answers: number) {
  emulator = await startEmulator({
    ...ENGINE_PROFILES['no-metrics'],
    speed: 10,
    stepPerSeqMs: 0,
    outputTokensMin: REPLY_TOKENS,
    outputTokensMax: REPLY_TOKENS,
    ...options,
  });
  client = new EngineClient({ url: `${emulator.url}/v1`, requestTimeoutMs: 20_000 });
  const engine = client;
  // As the worker's monitor finds it: nothing to feed onMetrics with.
  expect(await engine.metrics()).toBeNull();
  const window = new WindowController({ initial: 4, max: 24, decisionIntervalMs: 200, probeIntervalMs: 100 });
  window.setInFlight(0);
  const changes: string[] = [];
  let seen: number | null = null;
  const note = () => {
    const c = window.snapshot().lastChange;
    if (c && c.at !== seen) changes.push(`${c.from}→${c.to} ${c.reason}`);
    if (c) seen = c.at;
  };
  let sent = 0;
  let done = 0;
  let inFlight = 0;
  let withUsage = 0;
  const wake = new Set<() => void>();
  const notify = () => {
    for (const w of wake) w();
    wake.clear();
  };
  const send = async (i: number) => {
    const started = performance.now();
    const result = await engine.chat({ messages: [{ role: 'user', content: `Summarise part ${i}.` }], maxTokens: 200, requestId: `u${i}` });
    const latency = performance.now() - started;
    if (result.usage.completionTokens !== null) withUsage++;
    window.onCompleted(performance.now(), latency, result.usage.completionTokens ?? undefined);
    note();
    done++;
    inFlight--;
    window.setInFlight(inFlight);
    notify();
  };
  const timer = setInterval(() => {
    window.tick(performance.now());
    note();
    notify();
  }, 50);
  const running = new Set<Promise<void>>();
  try {
    while (done < answers) {
      if (inFlight < window.size && sent < answers) {
        inFlight++;
        window.setInFlight(inFlight);
        const p = send(sent++);
        running.add(p);
        void p.finally(() => running.delete(p));
        continue;
      }
      await new Promise<void>((resolve) => wake.add(resolve));
    }
    await Promise.all(running);
  } finally {
    clearInterval(timer);
  }
  return { window, changes, withUsage };
}

describe('the window without /metrics, usage in some answers only', () => {
  it('half the answers without usage: no cut at an engine with room, and the best latency is per token', async () => {
    const { window, changes, withUsage } = await run({ omitUsage: 'absent', omitUsageShare: 0.5 }, 500);
    // The engine really did leave out about half the counts.
    expect(withUsage).toBeGreaterThan(150);
    expect(withUsage).toBeLessThan(350);
    const cuts = changes.filter((c) => /cut|-1|halved/.test(c));
    expect(cuts, changes.join('\n')).toEqual([]);
    expect(window.size, changes.join('\n')).toBe(24);
    // Replies of 60 tokens at 2 ms a step (speed 10): a few ms per token, never a whole answer's ms.
    const snap = window.snapshot();
    expect(snap.bestLatencyUnit).toBe('ms/token');
    expect(snap.bestLatency).toBeGreaterThan(1);
    expect(snap.bestLatency).toBeLessThan(10);
  }, 60_000);

  it('no answer with usage: whole latencies, in ms', async () => {
    const { window, changes, withUsage } = await run({ omitUsage: 'null' }, 300);
    expect(withUsage).toBe(0);
    expect(changes.filter((c) => /cut|-1|halved/.test(c)), changes.join('\n')).toEqual([]);
    expect(window.size).toBe(24);
    const snap = window.snapshot();
    expect(snap.bestLatencyUnit).toBe('ms');
    expect(snap.bestLatency).toBeGreaterThan(REPLY_TOKENS);
  }, 60_000);
});
