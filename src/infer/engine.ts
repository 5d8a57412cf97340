/**
 * One engine as a worker sees it: its client, its window (how many requests may be in flight),
 * the gate that holds requests to the window, and the monitor that reads its /metrics and
 * watches its /health. A worker has one per engine it sends to (its primary, and fallbacks).
 */
import { EngineClient } from '../engine/client.ts';
import { WindowController } from '../engine/window.ts';
import { DocbatchError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import { EngineMonitor } from './engine-monitor.ts';
import { Gate } from './gate.ts';
import type { EngineRateLimiter } from './rate-limit.ts';

export interface EngineOptions {
  url: string;
  apiKey?: string;
  model?: string;
  requestTimeoutMs: number;
  initialInFlight: number;
  maxInFlight: number;
  cleanIntervalMs: number;
  ceilingHoldMs: number;
}

export class Engine {
  /** The URL as shown in logs and results (credentials removed). */
  readonly label: string;
  readonly client: EngineClient;
  readonly window: WindowController;
  readonly gate: Gate;
  readonly monitor: EngineMonitor;
  /** The endpoint's shared requests/tokens-per-minute limits, when it has any. */
  readonly limiter: EngineRateLimiter | null;

  constructor(options: EngineOptions, log: Logger, limiter: EngineRateLimiter | null = null) {
    this.limiter = limiter?.active ? limiter : null;
    this.label = shownUrl(options.url);
    this.client = new EngineClient({
      url: options.url,
      ...(options.apiKey ? { apiKey: options.apiKey } : {}),
      ...(options.model ? { model: options.model } : {}),
      requestTimeoutMs: options.requestTimeoutMs,
      connections: Math.max(64, options.maxInFlight + 16),
      onParamsChanged: (sentence) => log.warn({ engine: this.label }, sentence),
    });
    this.window = new WindowController({
      initial: options.initialInFlight,
      max: options.maxInFlight,
      cleanIntervalMs: options.cleanIntervalMs,
      ceilingHoldMs: options.ceilingHoldMs,
    });
    // The gate reports every send and finish; say so now, or the controller takes a worker that
    // has sent nothing yet for one that fills its window, and grows it while idle.
    this.window.setInFlight(0);
    this.gate = new Gate(
      () => this.window.size,
      () => this.monitor.isDown,
      (inFlight) => this.window.setInFlight(inFlight),
    );
    this.monitor = new EngineMonitor(this.client, this.window, log.child({ engine: this.label }));
    this.monitor.on('change', () => this.gate.notify());
  }

  start(): void {
    this.monitor.start();
  }

  async close(): Promise<void> {
    this.monitor.close();
    // close() waits for requests in flight; after a shutdown's deadline nothing may hold us.
    const closed = await Promise.race([this.client.close().then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 2000).unref())]);
    if (!closed) await this.client.destroy();
  }
}

/** A URL without its credentials, for logs and results. */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '[unparseable url]';
  }
}

/**
 * The engines one worker sends to: its primary, and fallbacks used while the primary has been
 * down longer than `fallbackAfterMs`. The primary is preferred again as soon as it is up.
 */
export class EngineSet {
  readonly primary: Engine;
  readonly fallbacks: readonly Engine[];
  private readonly fallbackAfterMs: number;

  constructor(primary: Engine, fallbacks: Engine[], fallbackAfterMs: number) {
    this.primary = primary;
    this.fallbacks = fallbacks;
    this.fallbackAfterMs = fallbackAfterMs;
  }

  get all(): Engine[] {
    return [this.primary, ...this.fallbacks];
  }

  /** The engine to send to now; null when none may be used yet (wait). */
  pick(now = performance.now()): Engine | null {
    const primary = this.primary.monitor;
    if (!primary.isDown) return this.primary;
    if (now - (primary.downSince ?? now) < this.fallbackAfterMs) return null;
    return this.fallbacks.find((e) => !e.monitor.isDown) ?? null;
  }

  /**
   * Resolves with an engine to send to, waiting while none may be used; rejects with
   * ENGINE_DOWN after `timeoutMs` (the caller hands the unit back) or ABORTED on `signal`.
   */
  async usable(signal: AbortSignal, timeoutMs: number): Promise<Engine> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const engine = this.pick();
      if (engine) return engine;
      const now = performance.now();
      if (now >= deadline) throw new DocbatchError('ENGINE_DOWN', `no engine up for ${Math.round(timeoutMs / 1000)} s`);
      // Wake on any engine coming back, on the grace running out, or at the deadline.
      const grace = (this.primary.monitor.downSince ?? now) + this.fallbackAfterMs - now;
      const waitMs = Math.max(10, Math.min(deadline - now, this.fallbacks.length > 0 && grace > 0 ? grace : deadline - now, 1000));
      await new Promise<void>((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          for (const e of this.all) e.monitor.off('up', done);
          resolve();
        };
        const onAbort = () => {
          clearTimeout(timer);
          for (const e of this.all) e.monitor.off('up', done);
          reject(new DocbatchError('ABORTED', 'aborted while waiting for an engine', { cause: signal.reason }));
        };
        const timer = setTimeout(done, waitMs);
        for (const e of this.all) e.monitor.once('up', done);
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  start(): void {
    for (const e of this.all) e.start();
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((e) => e.close()));
  }
}
