/**
 * The worker's heartbeat in `{p}:workers`: what `status` and the dashboard say about workers
 * (their engine down, their health, the units each settled since it started: the dashboard's
 * rates). Refreshed by the worker every 5 s and at each pause or resume; removed when it stops.
 */
import type { Redis } from 'ioredis';
import type { UnitJobData } from '../../queues/contracts.ts';
import type { DocbatchError } from '../errors.ts';
import type { DocMeta } from '../store/types.ts';
import type { Engine, EngineSet } from './engine.ts';

/** What the worker is doing now, as the heartbeat says it. */
export interface WorkerNow {
  /** The primary engine. */
  engine: Engine;
  engines: EngineSet;
  model: string | null;
  paused: string[];
  unhealthy: DocbatchError | null;
  active: number;
  queues: string[];
}

export class Heartbeat {
  private readonly redis: Redis;
  private readonly key: string;
  private readonly field: string;
  /** Units settled by this worker since it started, by kind (the heartbeat carries them for the dashboard's rates). */
  private readonly settledByKind: Record<string, number> = {};
  private readonly startedAt = Date.now();

  constructor(redis: Redis, prefix: string, workerName: string) {
    this.redis = redis;
    this.key = `${prefix}:workers`;
    this.field = workerName;
  }

  /** Counts a unit this worker settled. */
  settled(data: UnitJobData, meta: DocMeta): void {
    const kind = data.reduce ? 'summaries' : meta.kind === 'chat' ? (meta.task.unit === 'conversation' ? 'conversations' : 'chunks') : meta.task.unit === 'document' ? 'documents' : 'pages';
    this.settledByKind[kind] = (this.settledByKind[kind] ?? 0) + 1;
  }

  async publish(now: WorkerNow): Promise<void> {
    const { engine, engines } = now;
    const state = {
      at: Date.now(),
      engine: engine.label,
      model: now.model,
      engineDown: engine.monitor.isDown,
      ...(engines.fallbacks.length > 0 ? { fallbacks: engines.fallbacks.map((e) => ({ engine: e.label, down: e.monitor.isDown })), sendingTo: engines.pick()?.label ?? null } : {}),
      paused: now.paused,
      unhealthy: now.unhealthy ? { code: now.unhealthy.code, message: now.unhealthy.message } : null,
      // The engine units go to now (a fallback while it has taken over), and requests at any of them.
      window: (engines.pick() ?? engine).window.size,
      inFlight: engines.all.reduce((n, e) => n + e.gate.inFlight, 0),
      active: now.active,
      queues: now.queues,
      startedAt: this.startedAt,
      settled: this.settledByKind,
    };
    await this.redis.hset(this.key, this.field, JSON.stringify(state));
  }

  /** Removes the heartbeat (the worker stopped). */
  async forget(): Promise<number> {
    return this.redis.hdel(this.key, this.field);
  }
}
