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
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { claimName, moveOutputs, releaseName } from './names.ts';
import { foldLegacyNames, type NameClash } from './name-fold.ts';
import { MARK_WRITTEN_LUA, REGISTER_LUA, REOPEN_LUA, RESTORE_LUA, SETTLE_LUA, SPEND_LUA } from './scripts.ts';
import type { CountedSpend, DocMeta, DocRecord, DocState, SettleOutcome, UnitResult } from './types.ts';
import { lacksUsage, uncountedSpend } from '../usage.ts';

export type { DocMeta, DocRecord, DocState, SettleOutcome, UnitResult, UnitResultOk, UnitResultFailed } from './types.ts';

interface ScriptedRedis extends Redis {
  docbatchSettle(docKey: string, unitsKey: string, lockKey: string, statsKey: string, groupsKey: string, noUsageKey: string, spendsKey: string, ...args: Array<string | number>): Promise<[number, number, number, number, number]>;
  docbatchRegister(docKey: string, docsKey: string, activeKey: string, queuesKey: string, ...args: Array<string | number>): Promise<number>;
  docbatchMarkWritten(docKey: string, activeKey: string, unitsKey: string, groupsKey: string, noUsageKey: string, spendsKey: string, ...args: Array<string | number>): Promise<number>;
  docbatchReopen(docKey: string, unitsKey: string, activeKey: string, groupsKey: string, noUsageKey: string, ...args: Array<string | number>): Promise<number[] | number>;
  docbatchRestore(docKey: string, unitsKey: string, tempKey: string, ...args: Array<string | number>): Promise<number>;
}

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
    this.redis = redis as ScriptedRedis;
    if (!('docbatchSettle' in redis)) {
      redis.defineCommand('docbatchSettle', { numberOfKeys: 7, lua: SETTLE_LUA });
      redis.defineCommand('docbatchRegister', { numberOfKeys: 4, lua: REGISTER_LUA });
      redis.defineCommand('docbatchMarkWritten', { numberOfKeys: 6, lua: MARK_WRITTEN_LUA });
      redis.defineCommand('docbatchReopen', { numberOfKeys: 5, lua: REOPEN_LUA });
      redis.defineCommand('docbatchRestore', { numberOfKeys: 3, lua: RESTORE_LUA });
    }
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

  /**
   * Records a unit's result; the first result for a unit wins. With `lock`, writes only while
   * the job's BullMQ lock still holds `token` (a worker that lost its lock writes nothing).
   * Use settleUnit (settle.ts), which also schedules what a settled unit makes due.
   */
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
  ): Promise<SettleOutcome> {
    const ok = result.ok ? 1 : 0;
    // A failure counts what the engine spent on its rejected answers too. Counts the engine did
    // not report add nothing; the unit is counted in `units_without_usage` instead.
    const due = uncountedSpend({ promptTokens: result.promptTokens ?? null, completionTokens: result.completionTokens ?? null, engineMs: result.engineMs ?? 0 }, counted);
    const prompt = due.promptTokens ?? 0;
    const completion = due.completionTokens ?? 0;
    const engineMs = Math.round(due.engineMs);
    const [status, settled, units, last, groupDone] = await this.redis.docbatchSettle(
      this.docKey(docId),
      this.unitsKey(docId, gen),
      lock?.key ?? `${this.prefix}:nolock`,
      this.statsKey,
      this.groupsKey(docId, gen),
      this.noUsageKey(docId, gen),
      this.spendsKey(docId, gen),
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
      reopens ?? '',
      lacksUsage(result) ? 1 : 0,
      // This settle's id: sent again by ioredis after a reconnect, the same.
      randomBytes(8).toString('hex'),
    );
    const outcome = status === 1 || status === 2 ? 'recorded' : status === 0 ? 'duplicate' : status === -1 ? 'lock-lost' : status === -2 ? 'stale' : status === -4 ? 'reopened' : 'missing';
    return { outcome, settled, units, last: last === 1, groupDone: groupDone === 1, ...(status === 2 ? { again: true } : {}) };
  }

  /**
   * Counts what the engine answered for a unit in an attempt that ended without settling it
   * (SPEND_LUA): its tokens (null: not reported) and engine time. False when not counted in the
   * record (another generation, the document gone, or written already); its engine time counts in
   * the totals of all documents (BUDGET_USD) all the same. Once: the call carries an id, so ioredis
   * sending it again after a reconnect (its reply lost) adds nothing (false then).
   */
  async addSpent(docId: string, gen: number, unit: number, spent: { promptTokens: number | null; completionTokens: number | null; engineMs: number }): Promise<boolean> {
    const counted = await this.redis.eval(
      SPEND_LUA,
      4,
      this.docKey(docId),
      this.statsKey,
      this.noUsageKey(docId, gen),
      this.spendsKey(docId, gen),
      gen,
      unit,
      spent.promptTokens ?? 0,
      spent.completionTokens ?? 0,
      Math.round(spent.engineMs),
      lacksUsage(spent) ? 1 : 0,
      // This count's id: sent again by ioredis after a reconnect, the same.
      randomBytes(8).toString('hex'),
    );
    return counted === 1;
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
    const [[, h], [, exists]] = (await this.redis.multi().hmget(this.docKey(docId), 'gen', 'reopens').exists(this.unitsKey(docId, gen)).exec()) as [[unknown, Array<string | null>], [unknown, number]];
    if (Number(h[0] ?? -1) !== gen) return null;
    return { present: exists === 1, reopens: Number(h[1] ?? 0) };
  }

  /**
   * Puts results back (a written document's archive, for retry or a rewrite), whole or not at
   * all: they fill a temporary hash (expiring within the hour, should this process die), which
   * becomes the results only if none are there and the record was not reopened since `reopens`
   * was read (RESTORE_LUA in scripts.ts). 'changed': read the archive again. `entries` are taken
   * as they come (an archive streamed line by line) and sent in batches; if they fail part-way,
   * the temporary hash goes and nothing is restored.
   */
  async restoreResults(docId: string, gen: number, entries: AsyncIterable<[number, string]> | Iterable<[number, string]>, reopens: number): Promise<'restored' | 'present' | 'stale' | 'changed'> {
    const temp = `${this.unitsKey(docId, gen)}:restoring:${randomBytes(6).toString('hex')}`;
    let batch: Record<string, string> = {};
    let count = 0;
    let chars = 0;
    const flush = async () => {
      if (count === 0) return;
      await this.redis.multi().hset(temp, batch).expire(temp, 3600).exec();
      batch = {};
      count = 0;
      chars = 0;
    };
    try {
      for await (const [unit, result] of entries) {
        batch[String(unit)] = result;
        chars += result.length;
        if (++count >= 1000 || chars >= 8 << 20) await flush();
      }
      await flush();
    } catch (err) {
      await this.redis.unlink(temp).catch(() => {});
      throw err;
    }
    const out = await this.redis.docbatchRestore(this.docKey(docId), this.unitsKey(docId, gen), temp, gen, reopens);
    return out === 1 ? 'restored' : out === 0 ? 'present' : out === -1 ? 'stale' : 'changed';
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
    unitsWithoutUsage: n('units_without_usage'),
    engineMs: n('engine_ms'),
    createdAt: h.created_at ?? '',
    startedAt: h.started_at || null,
    finishedAt: h.finished_at || null,
    resumedAt: h.resumed_at || null,
    resumedFrom: n('resumed_from'),
    writtenAt: h.written_at || null,
    files: h.files ? (JSON.parse(h.files) as string[]) : [],
    writeError: h.write_error ? (JSON.parse(h.write_error) as { code: string; message: string }) : null,
    fed: n('fed'),
    reopens: n('reopens'),
  };
}
