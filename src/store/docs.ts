/**
 * The document record and the results hash in Redis: where every finished unit becomes durable
 * the moment it finishes, and where "the last unit of a document just settled" is decided
 * exactly once (see docs/design.md, "Why not a BullMQ flow").
 *
 *   {p}:doc:{id}        hash   meta (JSON), gen, units, state, done, failed, token and time counters
 *   {p}:doc:{id}:units  hash   unit index → UnitResult JSON (first write wins)
 *   {p}:docs            zset   doc ids by creation time
 *   {p}:names           hash   output name → doc id
 */
import type { Redis } from 'ioredis';
import { SETTLE_LUA, RESET_LUA } from './scripts.ts';
import type { DocMeta, DocRecord, DocState, SettleOutcome, UnitResult } from './types.ts';

export type { DocMeta, DocRecord, DocState, SettleOutcome, UnitResult, UnitResultOk, UnitResultFailed } from './types.ts';

interface ScriptedRedis extends Redis {
  docbatchSettle(docKey: string, unitsKey: string, lockKey: string, statsKey: string, groupsKey: string, ...args: Array<string | number>): Promise<[number, number, number, number, number]>;
  docbatchReset(docKey: string, unitsKey: string, groupsKey: string, ...args: Array<string | number>): Promise<number>;
}

export class DocStore {
  readonly redis: ScriptedRedis;
  readonly prefix: string;

  constructor(redis: Redis, prefix: string) {
    this.prefix = prefix;
    this.redis = redis as ScriptedRedis;
    if (!('docbatchSettle' in redis)) {
      redis.defineCommand('docbatchSettle', { numberOfKeys: 5, lua: SETTLE_LUA });
      redis.defineCommand('docbatchReset', { numberOfKeys: 3, lua: RESET_LUA });
    }
  }

  docKey(docId: string): string {
    return `${this.prefix}:doc:${docId}`;
  }
  unitsKey(docId: string): string {
    return `${this.prefix}:doc:${docId}:units`;
  }
  /** Conversation groups: reduce unit → chunks of it settled so far. */
  groupsKey(docId: string): string {
    return `${this.prefix}:doc:${docId}:groups`;
  }
  private get docsKey(): string {
    return `${this.prefix}:docs`;
  }
  /** Totals over every document under this prefix: engine_ms, units_done, units_failed. */
  get statsKey(): string {
    return `${this.prefix}:stats`;
  }

  /** Engine milliseconds spent on all documents so far (what BUDGET_USD is checked against). */
  async spentEngineMs(): Promise<number> {
    return Number((await this.redis.hget(this.statsKey, 'engine_ms')) ?? 0);
  }

  private get namesKey(): string {
    return `${this.prefix}:names`;
  }

  async get(docId: string): Promise<DocRecord | null> {
    const h = await this.redis.hgetall(this.docKey(docId));
    if (!h.meta) return null;
    return parseRecord(docId, h);
  }

  /**
   * Creates the record, or starts a new generation of an existing one (`reset`: results cleared,
   * generation bumped, so units of the old generation can no longer settle). Returns the record.
   */
  async register(meta: DocMeta, options: { reset: boolean; now: string }): Promise<DocRecord> {
    const gen = await this.redis.docbatchReset(
      this.docKey(meta.docId),
      this.unitsKey(meta.docId),
      this.groupsKey(meta.docId),
      JSON.stringify(meta),
      meta.units,
      options.reset ? 1 : 0,
      options.now,
    );
    await this.redis.zadd(this.docsKey, 'NX', Date.parse(options.now), meta.docId);
    const record = await this.get(meta.docId);
    if (!record || record.gen !== gen) throw new Error(`document ${meta.docId} changed while it was being registered`);
    return record;
  }

  async setState(docId: string, state: DocState, extra: Record<string, string | number> = {}): Promise<void> {
    await this.redis.hset(this.docKey(docId), { state, ...extra });
  }

  /**
   * Records a unit's result; the first result for a unit wins. With `lock`, writes only while
   * the job's BullMQ lock still holds `token` (a worker that lost its lock writes nothing).
   */
  async settle(
    docId: string,
    gen: number,
    unit: number,
    result: UnitResult,
    lock?: { key: string; token: string },
    group?: { reduce: number; count: number },
    now = new Date().toISOString(),
  ): Promise<SettleOutcome> {
    const ok = result.ok ? 1 : 0;
    const prompt = result.ok ? result.promptTokens : 0;
    const completion = result.ok ? result.completionTokens : 0;
    const engineMs = result.ok ? Math.round(result.engineMs) : 0;
    const [status, settled, units, last, groupDone] = await this.redis.docbatchSettle(
      this.docKey(docId),
      this.unitsKey(docId),
      lock?.key ?? `${this.prefix}:nolock`,
      this.statsKey,
      this.groupsKey(docId),
      unit,
      gen,
      JSON.stringify(result),
      ok,
      lock?.token ?? '',
      now,
      prompt,
      completion,
      engineMs,
      group ? String(group.reduce) : '',
      group?.count ?? 0,
    );
    const outcome = status === 1 ? 'recorded' : status === 0 ? 'duplicate' : status === -1 ? 'lock-lost' : status === -2 ? 'stale' : 'missing';
    return { outcome, settled, units, last: last === 1, groupDone: groupDone === 1 };
  }

  async unitResult(docId: string, unit: number): Promise<UnitResult | null> {
    const raw = await this.redis.hget(this.unitsKey(docId), String(unit));
    return raw === null ? null : (JSON.parse(raw) as UnitResult);
  }

  /** How many chunks of the group reduced by unit `reduce` have settled. */
  async groupSettled(docId: string, reduce: number): Promise<number> {
    return Number((await this.redis.hget(this.groupsKey(docId), String(reduce))) ?? 0);
  }

  /** Indices of units that have a result. */
  async settledUnits(docId: string): Promise<Set<number>> {
    const keys = await this.redis.hkeys(this.unitsKey(docId));
    return new Set(keys.map(Number));
  }

  /** Every unit's result in unit order (null where none), read in batches. */
  async *results(docId: string, units: number, batch = 1000): AsyncGenerator<[number, UnitResult | null]> {
    for (let start = 0; start < units; start += batch) {
      const fields = Array.from({ length: Math.min(batch, units - start) }, (_, i) => String(start + i));
      const values = await this.redis.hmget(this.unitsKey(docId), ...fields);
      for (let i = 0; i < values.length; i++) {
        const raw = values[i];
        yield [start + i, raw ? (JSON.parse(raw) as UnitResult) : null];
      }
    }
  }

  async markWritten(docId: string, gen: number, files: string[], now: string): Promise<boolean> {
    const current = await this.redis.hget(this.docKey(docId), 'gen');
    if (Number(current) !== gen) return false;
    await this.redis.hset(this.docKey(docId), { state: 'written', written_at: now, files: JSON.stringify(files) });
    return true;
  }

  /**
   * Claims output base name `name` for `docId`. A name already claimed by another document gets
   * `-<8 hex of the content hash>` appended. Returns the name to use.
   */
  async claimName(name: string, docId: string, sha256: string): Promise<string> {
    const won = await this.redis.hsetnx(this.namesKey, name, docId);
    if (won === 1) return name;
    const owner = await this.redis.hget(this.namesKey, name);
    if (owner === docId) return name;
    const suffixed = `${name}-${sha256.slice(0, 8)}`;
    await this.redis.hsetnx(this.namesKey, suffixed, docId);
    return suffixed;
  }

  /** Doc ids, newest first. */
  async list(limit = 1000): Promise<string[]> {
    return this.redis.zrevrange(this.docsKey, 0, limit - 1);
  }
}

function parseRecord(docId: string, h: Record<string, string>): DocRecord {
  const n = (k: string) => Number(h[k] ?? 0);
  return {
    docId,
    meta: JSON.parse(h.meta ?? '{}') as DocMeta,
    gen: n('gen'),
    units: n('units'),
    state: (h.state ?? 'enqueuing') as DocState,
    done: n('done'),
    failed: n('failed'),
    promptTokens: n('prompt_tokens'),
    completionTokens: n('completion_tokens'),
    engineMs: n('engine_ms'),
    createdAt: h.created_at ?? '',
    startedAt: h.started_at || null,
    finishedAt: h.finished_at || null,
    writtenAt: h.written_at || null,
    files: h.files ? (JSON.parse(h.files) as string[]) : [],
  };
}
