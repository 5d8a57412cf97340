/**
 * The document record and the results hash in Redis: where every finished unit becomes durable
 * the moment it finishes, and where "the last unit of a document just settled" is decided
 * exactly once (see docs/design.md, "Why not a BullMQ flow"). Every key and its lifetime is in
 * docs/design.md, "Redis keys".
 *
 *   {p}:doc:{id}          hash   meta (JSON), gen, counters, state, feeder cursor, password until written
 *   {p}:doc:{id}:r:{gen}  hash   unit index → UnitResult JSON (first write wins); gone once written
 *   {p}:doc:{id}:g:{gen}  hash   conversation summary unit → chunks of it settled
 *   {p}:doc:{id}:nu:{gen} bitmap units settled without (all) usage: each counted once in units_without_usage
 *   {p}:doc:{id}:r:{gen}:restoring:{rand}  hash   an archive being put back (expires in an hour)
 *   {p}:docs              zset   doc ids by creation time (status, gc)
 *   {p}:active            zset   doc ids not yet written (the reconciler's work list)
 *   {p}:names             hash   output folder/name → doc id (names.ts: output names and their claims)
 *   {p}:names:folded      string claims made before case folding have their folded field (name-fold.ts)
 *   {p}:doc:{id}:claim    string a name is claimed, the record not registered yet (names.ts)
 *   {p}:queues            set    infer queues in use
 *   {p}:stats             hash   totals over all documents
 */
import type { Redis } from 'ioredis';
import { defineDocCommands, type ScriptedRedis } from './doc-commands.ts';
import { claimName, moveOutputs, releaseName } from './names.ts';
import { foldLegacyNames, type NameClash } from './name-fold.ts';
import { parseRecord } from './record.ts';
import { restoreResults, restoreState } from './restore.ts';
import { addSpent, settleResult } from './settle-spend.ts';
import type { CountedSpend, DocMeta, DocRecord, DocState, SettleOutcome, UnitResult } from './types.ts';

export type { DocMeta, DocRecord, DocState, SettleOutcome, UnitResult, UnitResultOk, UnitResultFailed } from './types.ts';

/** KEYS doc hash; ARGV gen, now. Sets `started_at` if the document is at that generation and has none. */
const MARK_STARTED_LUA = `
if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[1] then return 0 end
return redis.call('HSETNX', KEYS[1], 'started_at', ARGV[2])`;

export class DocStore {
  readonly redis: ScriptedRedis;
  readonly prefix: string;
  private folding: Promise<NameClash[]> | null = null;

  constructor(redis: Redis, prefix: string) {
    this.prefix = prefix;
    this.redis = defineDocCommands(redis);
  }

  docKey(docId: string): string {
    return `${this.prefix}:doc:${docId}`;
  }
  /** The results of one generation. */
  unitsKey(docId: string, gen: number): string {
    return `${this.prefix}:doc:${docId}:r:${gen}`;
  }
  /** Conversation groups of one generation: reduce unit → chunks of it settled so far. */
  groupsKey(docId: string, gen: number): string {
    return `${this.prefix}:doc:${docId}:g:${gen}`;
  }
  /** Unit → the id of its last count of spent answers (SPEND_LUA), `s:<unit>` → of its last settle recorded (SETTLE_LUA): one run again adds nothing. Expires a day after the last. */
  spendsKey(docId: string, gen: number): string {
    return `${this.docKey(docId)}:sp:${gen}`;
  }
  /** Bit per unit settled without (all) its usage reported: `units_without_usage` counts units, not settles. */
  noUsageKey(docId: string, gen: number): string {
    return `${this.docKey(docId)}:nu:${gen}`;
  }
  get docsKey(): string {
    return `${this.prefix}:docs`;
  }
  get activeKey(): string {
    return `${this.prefix}:active`;
  }
  get queuesKey(): string {
    return `${this.prefix}:queues`;
  }
  get namesKey(): string {
    return `${this.prefix}:names`;
  }
  /** Totals over every document under this prefix: engine_ms, units_done, units_failed. */
  get statsKey(): string {
    return `${this.prefix}:stats`;
  }

  /** Engine milliseconds spent on all documents so far (what BUDGET_USD is checked against). */
  async spentEngineMs(): Promise<number> {
    return Number((await this.redis.hget(this.statsKey, 'engine_ms')) ?? 0);
  }

  async get(docId: string): Promise<DocRecord | null> {
    const h = await this.redis.hgetall(this.docKey(docId));
    if (!h.meta) return null;
    return parseRecord(docId, h);
  }

  /** Several records in one round trip (missing ones left out). */
  async getMany(docIds: string[]): Promise<DocRecord[]> {
    if (docIds.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of docIds) pipeline.hgetall(this.docKey(id));
    const replies = (await pipeline.exec()) ?? [];
    const out: DocRecord[] = [];
    replies.forEach(([err, h], i) => {
      if (!err && h && (h as Record<string, string>).meta) out.push(parseRecord(docIds[i]!, h as Record<string, string>));
    });
    return out;
  }

  /** The PDF password of a document not yet written (null once written: it leaves Redis then). */
  async password(docId: string): Promise<string | null> {
    return this.redis.hget(this.docKey(docId), 'password');
  }

  /**
   * Creates the record, or starts a new generation of an existing one (`reset`: generation
   * bumped, counters cleared, so units of the old generation can no longer settle). Returns it.
   */
  async register(meta: DocMeta, options: { reset: boolean; now: string; jobName: string; password?: string }): Promise<DocRecord> {
    const gen = await this.redis.docbatchRegister(
      this.docKey(meta.docId),
      this.docsKey,
      this.activeKey,
      this.queuesKey,
      JSON.stringify(meta),
      meta.units,
      meta.feedUnits,
      options.reset ? 1 : 0,
      options.now,
      Date.parse(options.now),
      meta.queue,
      meta.priority,
      options.jobName,
      options.password ?? '',
      this.prefix,
    );
    // The record holds the name now (gc checks it); the claim has done its job.
    await this.redis.unlink(this.claimKey(meta.docId));
    const record = await this.get(meta.docId);
    if (!record || record.gen !== gen) throw new Error(`document ${meta.docId} changed while it was being registered`);
    return record;
  }

  async setState(docId: string, state: DocState, extra: Record<string, string | number> = {}): Promise<void> {
    await this.redis.hset(this.docKey(docId), { state, ...extra });
  }

  /**
   * A worker took a unit of generation `gen`: the document's run starts now, unless it had
   * started (`started_at` is set once a generation). Without this, a run was timed from its first
   * unit settled, which made its early rate far too high and showed it `queued` while its first
   * units were at the engine.
   */
  async markStarted(docId: string, gen: number, now = new Date().toISOString()): Promise<void> {
    await this.redis.eval(MARK_STARTED_LUA, 1, this.docKey(docId), gen, now);
  }

  /** Records a unit's result, the first for a unit winning, and what it cost (settle-spend.ts). Use settleUnit (settle.ts). */
  async settle(
    docId: string,
    gen: number,
    unit: number,
    result: UnitResult,
    lock?: { key: string; token: string },
    group?: { reduce: number; count: number },
    now = new Date().toISOString(),
    /** The record's `reopens` when the unit read its inputs: a reopen since refuses the result. */
    reopens?: number,
    /** What of the result's tokens and engine time the record counts already (addSpent, as its answers came): added is the rest. */
    counted?: CountedSpend,
    /** The settle's id: one answer tried again is the same settle. @defaultValue a new one */
    id?: string,
  ): Promise<SettleOutcome> {
    return settleResult(this, docId, gen, unit, result, lock, group, now, reopens, counted, id);
  }

  /** Counts what the engine answered in an attempt that ended without settling its unit, once (settle-spend.ts). */
  async addSpent(docId: string, gen: number, unit: number, spent: { promptTokens: number | null; completionTokens: number | null; engineMs: number }): Promise<boolean> {
    return addSpent(this, docId, gen, unit, spent);
  }

  async unitResult(docId: string, gen: number, unit: number): Promise<UnitResult | null> {
    const raw = await this.redis.hget(this.unitsKey(docId, gen), String(unit));
    return raw === null ? null : (JSON.parse(raw) as UnitResult);
  }

  /** How many chunks of the group reduced by unit `reduce` have settled. */
  async groupSettled(docId: string, gen: number, reduce: number): Promise<number> {
    return Number((await this.redis.hget(this.groupsKey(docId, gen), String(reduce))) ?? 0);
  }

  /** Indices of units that have a result. */
  async settledUnits(docId: string, gen: number): Promise<Set<number>> {
    const keys = await this.redis.hkeys(this.unitsKey(docId, gen));
    return new Set(keys.map(Number));
  }

  /** Every unit's result in unit order (null where none), read in batches. */
  async *results(docId: string, gen: number, units: number, batch = 1000): AsyncGenerator<[number, UnitResult | null]> {
    for (let start = 0; start < units; start += batch) {
      const fields = Array.from({ length: Math.min(batch, units - start) }, (_, i) => String(start + i));
      const values = await this.redis.hmget(this.unitsKey(docId, gen), ...fields);
      for (let i = 0; i < values.length; i++) {
        const raw = values[i];
        yield [start + i, raw ? (JSON.parse(raw) as UnitResult) : null];
      }
    }
  }

  /** How many units have a result (what the writer's completeness check counts, not the counters). */
  async settledCount(docId: string, gen: number): Promise<number> {
    return this.redis.hlen(this.unitsKey(docId, gen));
  }

  /** Whether a generation's results are in Redis, and the record's reopen count (read before an archive). */
  async restoreState(docId: string, gen: number): Promise<{ present: boolean; reopens: number } | null> {
    return restoreState(this, docId, gen);
  }

  /** Puts results back from an archive, whole or not at all (restore.ts). 'changed': read the archive again. */
  async restoreResults(docId: string, gen: number, entries: AsyncIterable<[number, string]> | Iterable<[number, string]>, reopens: number): Promise<'restored' | 'present' | 'stale' | 'changed'> {
    return restoreResults(this, docId, gen, entries, reopens);
  }

  async hasResults(docId: string, gen: number): Promise<boolean> {
    return (await this.redis.exists(this.unitsKey(docId, gen))) === 1;
  }

  /**
   * Marks generation `gen` written and retires it in one step (MARK_WRITTEN_LUA): only if it is
   * current, no unit was reopened since the writer read the record (`reopens`) and every unit has
   * a result. Then the results leave Redis (they are archived), the record is made lean (the
   * report keeps the split's statistics; the record keeps what status, retry and resume need) and
   * expires after `retentionSeconds`; `counts`, what the writer counted in the results, replace
   * the counters. 'changed': nothing was done (reopened since, or results missing); 'stale': a
   * newer generation started; 'already': another write marked it.
   */
  async markWritten(
    docId: string,
    gen: number,
    write: { files: string[]; now: string; reopens: number; retentionSeconds: number; meta?: DocMeta; counts?: { done: number; failed: number } },
  ): Promise<'written' | 'stale' | 'changed' | 'already'> {
    let lean = '';
    if (write.meta) {
      const { stats: _stats, siblings: _siblings, ...rest } = write.meta;
      lean = JSON.stringify(rest);
    }
    const out = await this.redis.docbatchMarkWritten(
      this.docKey(docId),
      this.activeKey,
      this.unitsKey(docId, gen),
      this.groupsKey(docId, gen),
      this.noUsageKey(docId, gen),
      this.spendsKey(docId, gen),
      gen,
      write.now,
      JSON.stringify(write.files),
      docId,
      write.reopens,
      Math.max(1, Math.round(write.retentionSeconds)),
      lean,
      write.counts?.done ?? '',
      write.counts?.failed ?? '',
    );
    if (out === 1) await this.announceFinished(docId);
    return out === 1 ? 'written' : out === 0 ? 'stale' : out === 3 ? 'already' : 'changed';
  }

  /** Pub/sub channel on which the id of a document just written or failed is published (`waitForDocs` wakes on it). */
  get finishedChannel(): string {
    return `${this.prefix}:finished`;
  }

  /** Best effort: the document is marked already, and anyone waiting also polls. */
  private async announceFinished(docId: string): Promise<void> {
    await this.redis.publish(this.finishedChannel, docId).catch(() => {});
  }

  /** Points a finished document at another output folder and name, and hands it to the writer (names.ts). */
  async moveOutputs(docId: string, gen: number, state: DocState, from: Pick<DocMeta, 'outSub' | 'name'>, meta: DocMeta): Promise<boolean> {
    await this.foldLegacyNames(); // the new name is claimed here too
    return moveOutputs(this, docId, gen, state, from, meta);
  }

  /** The outputs could not be written: the document is failed (terminal until `docbatch retry`). */
  async markWriteFailed(docId: string, gen: number, error: { code: string; message: string }): Promise<boolean> {
    const current = await this.redis.hget(this.docKey(docId), 'gen');
    if (Number(current) !== gen) return false;
    await this.redis.multi().hset(this.docKey(docId), { state: 'failed', write_error: JSON.stringify(error) }).zrem(this.activeKey, docId).exec();
    await this.announceFinished(docId);
    return true;
  }

  /**
   * Reopens failed units of a generation (retry): those with one of `codes` ([] = any), among
   * `units` ([] = all). `summaries` maps candidate chunk units to their conversation's summary
   * unit, `groups` each such summary unit to its chunks (first, count). Returns the units reopened, or 'retired' when the document is written and its results
   * are not in Redis (written again since they were restored: restore them again).
   */
  async reopen(docId: string, gen: number, filter: { codes: string[]; units: number[]; summaries: Record<number, number>; groups: Record<number, [first: number, count: number]> }): Promise<number[] | 'retired'> {
    const now = Date.now();
    const out = await this.redis.docbatchReopen(
      this.docKey(docId),
      this.unitsKey(docId, gen),
      this.activeKey,
      this.groupsKey(docId, gen),
      this.noUsageKey(docId, gen),
      gen,
      JSON.stringify(filter.codes),
      JSON.stringify(filter.units),
      now,
      docId,
      JSON.stringify(filter.summaries),
      JSON.stringify(filter.groups),
      new Date(now).toISOString(),
    );
    if (out === -2) return 'retired';
    if (typeof out === 'number') throw new Error(`document ${docId} moved past generation ${gen}`);
    return out;
  }

  /** Claims output name `name` in folder `dir` for `docId`, or a variant of it; returns the name won (names.ts). */
  async claimName(dir: string, name: string, docId: string, sha256: string, kind = ''): Promise<string> {
    await this.foldLegacyNames();
    return (await claimName(this, dir, name, docId, sha256, kind)).name;
  }

  /** claimName, also saying whether the name is new to the document (`fresh`) or was its already. */
  async claim(dir: string, name: string, docId: string, sha256: string, kind = ''): Promise<{ name: string; fresh: boolean }> {
    await this.foldLegacyNames();
    return claimName(this, dir, name, docId, sha256, kind);
  }

  /**
   * Claims written before names were case-folded get their folded field (once per Redis, and
   * once per store: src/store/name-fold.ts); returns the pairs of documents whose names differ
   * only by case (empty after the first time).
   */
  foldLegacyNames(): Promise<NameClash[]> {
    this.folding ??= foldLegacyNames(this.redis, this.prefix).catch((err: unknown) => {
      this.folding = null;
      throw err;
    });
    return this.folding;
  }

  /** Gives back a name claimed for a move that did not happen, unless the record names it by now (names.ts). */
  async releaseName(dir: string, name: string, docId: string): Promise<boolean> {
    await this.foldLegacyNames();
    return releaseName(this, dir, name, docId);
  }

  /** Set while a producer holds a name for a document it has not registered yet. */
  claimKey(docId: string): string {
    return `${this.docKey(docId)}:claim`;
  }

  /** Doc ids, newest first. */
  async list(limit = 1000): Promise<string[]> {
    return this.redis.zrevrange(this.docsKey, 0, limit - 1);
  }

  /** Doc ids not yet written, oldest first. */
  async active(limit = 100_000): Promise<string[]> {
    return this.redis.zrange(this.activeKey, '0', String(limit - 1));
  }

  /** Infer queues in use under this prefix. */
  async queues(): Promise<string[]> {
    return (await this.redis.smembers(this.queuesKey)).sort();
  }
}
