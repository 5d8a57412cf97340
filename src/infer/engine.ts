/**
 * One engine as a worker sees it: its client, its window (how many requests may be in flight),
 * the gate that holds requests to the window, and the monitor that reads its /metrics and
 * watches its /health. A worker has one per engine it sends to (its primary, and fallbacks).
 */
import { EngineClient } from '../engine/client.ts';
import { WindowController } from '../engine/window.ts';
import type { Logger } from '../observe/log.ts';
import { EngineMonitor } from './engine-monitor.ts';
import { Gate } from './gate.ts';

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

  constructor(options: EngineOptions, log: Logger) {
    this.label = shownUrl(options.url);
    this.client = new EngineClient({
      url: options.url,
      ...(options.apiKey ? { apiKey: options.apiKey } : {}),
      ...(options.model ? { model: options.model } : {}),
      requestTimeoutMs: options.requestTimeoutMs,
      connections: Math.max(64, options.maxInFlight + 16),
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
