/**
 * Sending one prepared unit to the engine until it succeeds or fails for a reason that is the
 * unit's own. Faults of the engine are handled here, without using the unit's attempts:
 *
 * - engine down (refused, reset, 503, dead): pause intake, wait for /health, send again;
 * - out of memory (engine death, "CUDA out of memory"): halve the window, wait for /health,
 *   send again; a unit that runs out of memory alone at window 1 is rendered smaller
 *   (1288 → 1024 → 768 px by default) and finally fails with ENGINE_OOM;
 * - engine busy (429, Ollama's 503): shrink and send again after the engine recovers.
 *
 * Everything else is thrown to the processor, which decides with src/errors.ts.
 */
import type { ChatResult, EngineClient } from '../engine/client.ts';
import type { WindowController } from '../engine/window.ts';
import { DocbatchError, toDocbatchError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import type { EngineMonitor } from './engine-monitor.ts';
import type { Gate } from './gate.ts';
import type { PreparedUnit } from './units.ts';

export interface DispatchParts {
  client: EngineClient;
  window: WindowController;
  gate: Gate;
  monitor: EngineMonitor;
  /** How long a unit waits for a dead engine before this counts as a failed attempt. */
  engineDownTimeoutMs: number;
  /** Longest sides to fall back to after an OOM alone at window 1 (pages only). */
  oomSizes: number[];
  log: Logger;
  /** Hooks for metrics. */
  onOom?: () => void;
  onRequest?: (ms: number, ok: boolean) => void;
}

export interface Dispatched {
  result: ChatResult;
  prepared: PreparedUnit;
  /** Engine ms charged to this unit (its share of the time the engine was busy). */
  engineMs: number;
}

/** Keep prompt + max_tokens inside the model's context when the context is known. */
export function fitMaxTokens(prepared: PreparedUnit, maxModelLen: number | null): number {
  if (!maxModelLen) return prepared.maxTokens;
  const room = maxModelLen - prepared.promptTokensEstimate - 64;
  return Math.max(64, Math.min(prepared.maxTokens, room));
}

export async function dispatchUnit(
  parts: DispatchParts,
  prepare: (longestSide: number | null) => Promise<PreparedUnit>,
  meta: { requestId: string; isPage: boolean },
  signal: AbortSignal,
): Promise<Dispatched> {
  const { client, window, gate, monitor, log } = parts;
  let sizes = meta.isPage ? [...parts.oomSizes] : [];
  let prepared = await prepare(null);
  for (let round = 0; ; round++) {
    await monitor.whenUp(signal, parts.engineDownTimeoutMs);
    const ticket = await gate.acquire(signal);
    const windowAtSend = window.size;
    const aloneAtSend = gate.inFlight === 1;
    const started = performance.now();
    try {
      const maxModelLen = (await client.model(signal)).maxModelLen;
      const result = await client.chat(
        {
          messages: prepared.messages,
          maxTokens: fitMaxTokens(prepared, maxModelLen),
          temperature: 0,
          requestId: round === 0 ? meta.requestId : `${meta.requestId}-r${round}`,
        },
        signal,
      );
      const latency = performance.now() - started;
      window.onCompleted(performance.now(), latency, result.usage.completionTokens);
      parts.onRequest?.(latency, true);
      return { result, prepared, engineMs: ticket.charged() };
    } catch (caught) {
      parts.onRequest?.(performance.now() - started, false);
      if (signal.aborted) throw new DocbatchError('ABORTED', `aborted: ${String(signal.reason ?? '')}`, { cause: caught });
      const err = toDocbatchError(caught, 'ENGINE_ERROR');
      const dead = (err as { engineDead?: boolean }).engineDead === true;
      if (err.code === 'ENGINE_OOM' || dead) {
        parts.onOom?.();
        // Alone at window 1, this unit itself is too big for the engine's memory.
        const aloneAtOne = windowAtSend <= 1 && aloneAtSend;
        window.onOom(performance.now(), started);
        log.warn({ code: err.code, dead, window: window.size, windowAtSend }, 'engine out of memory; shrinking the window');
        // A dead engine also needs the wait for /health; a per-request OOM does not.
        if (dead) monitor.reportDown(err.message, true);
        if (aloneAtOne) {
          const next = sizes.find((s) => s < (prepared.imageSize ?? Infinity));
          if (next === undefined) {
            throw new DocbatchError('ENGINE_OOM', `out of memory even alone at window 1${prepared.imageSize ? ` and ${prepared.imageSize} px` : ''}: ${err.message}`, { cause: err });
          }
          sizes = sizes.filter((s) => s < next);
          log.warn({ imageSize: next }, 'unit runs out of memory alone; rendering it smaller');
          prepared = await prepare(next);
        }
        continue;
      }
      if (err.code === 'ENGINE_DOWN') {
        monitor.reportDown(err.message, false);
        continue;
      }
      if (err.code === 'ENGINE_BUSY') {
        window.onBusy(performance.now());
        await new Promise((r) => setTimeout(r, 500 + Math.random() * 1000));
        continue;
      }
      throw err;
    } finally {
      ticket.release();
    }
  }
}
