/**
 * Watches the engine for the worker: feeds `/metrics` to the window controller every second
 * while the engine is up, and, once any request reports the engine down or dead, polls
 * `/health` (capped exponential backoff with jitter) until it answers again. Units that hit a
 * dead engine wait here (`whenUp`) instead of failing: that uses none of their attempts. An
 * idle worker asks /health itself (every 5 s). A /health that has never once answered 2xx (a
 * gateway's own, 502/503 for ever) is no signal: /v1/models then says whether the engine is up.
 */
import { EventEmitter } from 'node:events';
import { EngineError, type EngineClient } from '../engine/client.ts';
import { waitForHealthy } from '../engine/signals.ts';
import type { EngineHealth } from '../engine/types.ts';
import type { WindowController } from '../engine/window.ts';
import { DocbatchError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';

/** How often an idle worker asks /health (and one whose /health never answered 2xx yet). */
const IDLE_HEALTH_EVERY_MS = 5000;

export interface EngineMonitorOptions {
  /** How often /metrics is read while the engine is up. @defaultValue 1000 */
  metricsIntervalMs?: number;
  /** First and largest pause between /health polls while down. @defaultValue 250, 5000 */
  healthInitialDelayMs?: number;
  healthMaxDelayMs?: number;
}

export interface MonitorEvents {
  down: [reason: string];
  up: [downMs: number];
  change: [];
}

export class EngineMonitor extends EventEmitter<MonitorEvents> {
  private readonly client: EngineClient;
  private readonly window: WindowController;
  private readonly log: Logger;
  private readonly options: Required<EngineMonitorOptions>;
  private readonly stop = new AbortController();
  private down: { since: number; done: Promise<void> } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private metricsSupported = true;
  private lastLoggedAt: number | null = null;
  private lastHealthAt = Number.NEGATIVE_INFINITY;
  /** /health has answered 2xx at least once: only then is its failing a verdict on the engine. */
  private healthAnswered = false;
  /** Outages since the last answer, and until when /v1/models may not end the current one (health()). */
  private outagesUnanswered = 0;
  private holdUntil = Number.NEGATIVE_INFINITY;
  /** Total time the engine was seen down, for metrics and reports. */
  downMs = 0;
  deaths = 0;

  constructor(client: EngineClient, window: WindowController, log: Logger, options: EngineMonitorOptions = {}) {
    super();
    // Every unit waiting for a slot or for the engine's return listens here (and stops when it
    // has one): a batch of 16 and more is no leak, so no limit and no warning.
    this.setMaxListeners(0);
    this.client = client;
    this.window = window;
    this.log = log;
    this.options = { metricsIntervalMs: 1000, healthInitialDelayMs: 250, healthMaxDelayMs: 5000, ...options };
  }

  get isDown(): boolean {
    return this.down !== null;
  }

  /** When the current outage began (performance.now()), or null while up. */
  get downSince(): number | null {
    return this.down?.since ?? null;
  }

  start(): void {
    if (this.timer) return;
    const loop = async () => {
      if (this.stop.signal.aborted) return;
      await this.readMetrics();
      if (!this.stop.signal.aborted) this.timer = setTimeout(loop, this.options.metricsIntervalMs).unref();
    };
    this.timer = setTimeout(loop, 0).unref();
  }

  private async readMetrics(): Promise<void> {
    const now = performance.now();
    let unreachable = false;
    if (!this.down && this.metricsSupported) {
      try {
        const metrics = await this.client.metrics(AbortSignal.any([this.stop.signal, AbortSignal.timeout(5000)]));
        if (metrics === null) {
          this.metricsSupported = false;
          const why = this.client.metricsMissing;
          this.log.info({ metrics: why ?? 'no engine gauges' }, `engine has no /metrics${why ? ` (${why})` : ''}; the window follows the answers (their latency and lengths)`);
        } else {
          this.window.onMetrics(performance.now(), {
            running: metrics.running,
            waiting: metrics.waiting,
            kvCacheUsage: metrics.kvCacheUsage,
            preemptionsTotal: metrics.preemptionsTotal,
          });
        }
      } catch (err) {
        // A failed metrics read is not a verdict on the engine: requests report real failures,
        // and an idle worker asks /health (below).
        unreachable = err instanceof EngineError && (err.code === 'ENGINE_DOWN' || err.code === 'ENGINE_TIMEOUT');
      }
    }
    // A worker sending nothing hears nothing from requests: while idle it asks /health after a
    // /metrics read that found no engine, and every 5 s anyway (a dead vLLM that keeps its port,
    // VLLM_KEEP_ALIVE_ON_ENGINE_DEATH, still answers /metrics), so an engine that died while the
    // worker was idle shows as down (status, the dashboard, docbatch_engine_up) before work
    // comes. Until /health has once answered 2xx it is asked busy or not: whether it is a signal
    // at all (health() below) is learnt while the engine is up.
    const idle = () => (this.window.snapshot().inFlight ?? 0) === 0;
    if (!this.down && !this.stop.signal.aborted && (idle() || !this.healthAnswered) && (unreachable || now - this.lastHealthAt >= IDLE_HEALTH_EVERY_MS)) {
      this.lastHealthAt = now;
      const health = await this.health(AbortSignal.any([this.stop.signal, AbortSignal.timeout(5000)])).catch(() => 'unknown' as const);
      if ((health === 'unreachable' || health === 'dead') && idle()) {
        this.reportDown(`the engine does not answer /health (${health}) while this worker sends it nothing`, health === 'dead');
      }
    }
    this.window.tick(now);
    // Every move of the window, with its reason, for whoever wants to see how it steers.
    const change = this.window.snapshot().lastChange;
    if (change && change.at !== this.lastLoggedAt) {
      this.lastLoggedAt = change.at;
      this.log.debug({ window: change.to, from: change.from, reason: change.reason, state: this.window.state }, 'window changed');
    }
    this.emit('change');
  }

  /**
   * Whether the engine can take requests, as /health says, if /health is a signal here. A
   * gateway or proxy in front of the engine may answer its own /health (and /metrics) with
   * 502/503 for ever while it passes completions on: a /health that has never once answered 2xx
   * says nothing of the engine, so then /v1/models (which goes through to it, as completions
   * do) decides. Once /health has answered 2xx, it is believed, as vLLM's is.
   */
  async health(signal?: AbortSignal): Promise<EngineHealth> {
    const state = await this.client.health(signal);
    if (state === 'up') {
      this.healthAnswered = true;
      return state;
    }
    if (this.healthAnswered) return state;
    // A gateway answers /v1/models itself even while the engine behind it is down: after a
    // request found it down, its models end the outage only after a hold that doubles with each
    // outage no answer came between (5 s to 60 s), so units are not sent round in a tight loop.
    if (performance.now() < this.holdUntil) return state;
    try {
      await this.client.models(signal);
      return 'up';
    } catch (err) {
      if (err instanceof EngineError && err.code === 'ABORTED') throw err;
      return state;
    }
  }

  /** Whether /health is a signal here (it has answered 2xx once): see health(). */
  get healthIsSignal(): boolean {
    return this.healthAnswered;
  }

  /** A request was answered: the engine works (ends the doubling of health()'s hold). */
  answered(): void {
    this.outagesUnanswered = 0;
  }

  /** A request found the engine down or dead: pause intake and poll /health until it is back. */
  reportDown(reason: string, dead: boolean): void {
    if (this.down || this.stop.signal.aborted) return;
    const since = performance.now();
    this.outagesUnanswered++;
    this.holdUntil = since + Math.min(60_000, IDLE_HEALTH_EVERY_MS * 2 ** Math.min(this.outagesUnanswered - 1, 8));
    if (dead) this.deaths++;
    this.window.onEngineDown(since);
    this.log.warn({ reason }, 'engine down; pausing intake and waiting for /health');
    const done = waitForHealthy(this, {
      signal: this.stop.signal,
      initialDelayMs: this.options.healthInitialDelayMs,
      maxDelayMs: this.options.healthMaxDelayMs,
    }).then(
      () => {
        const downMs = performance.now() - since;
        this.downMs += downMs;
        this.down = null;
        this.window.onEngineUp(performance.now());
        this.log.info({ downMs: Math.round(downMs), window: this.window.size }, 'engine is back; resuming');
        this.emit('up', downMs);
        this.emit('change');
      },
      () => {
        this.down = null;
      },
    );
    this.down = { since, done };
    this.emit('down', reason);
    this.emit('change');
  }

  /** Resolves when the engine is up (at once if it is), rejects after `timeoutMs` or on abort. */
  async whenUp(signal: AbortSignal, timeoutMs: number): Promise<void> {
    const down = this.down;
    if (!down) return;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DocbatchError('ENGINE_DOWN', `engine still down after ${Math.round(timeoutMs / 1000)} s`)),
        timeoutMs,
      );
    });
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new DocbatchError('ABORTED', 'aborted while waiting for the engine', { cause: signal.reason }));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    // The losers of the race settle later; they must not surface as unhandled rejections.
    timeout.catch(() => {});
    aborted.catch(() => {});
    try {
      await Promise.race([down.done, timeout, aborted]);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  close(): void {
    this.stop.abort();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
