/**
 * What a unit's answers write to its record: its result, settled (SETTLE_LUA: the first result
 * for a unit wins), and the tokens and engine time they cost (SETTLE_LUA with the result, or
 * SPEND_LUA for an attempt that ended without settling). Each call carries an id, so ioredis
 * sending it again after a reconnect (its reply lost) adds nothing. DocStore's `settle` and
 * `addSpent` call these; settleUnit (settle.ts) is what the paths that settle use.
 */
import { randomBytes } from 'node:crypto';
import type { ScriptedRedis } from './doc-commands.ts';
import { SPEND_LUA } from './scripts.ts';
import type { CountedSpend, SettleOutcome, UnitResult } from './types.ts';
import { lacksUsage, uncountedSpend } from '../usage.ts';

/** The keys these scripts touch: DocStore's. */
export interface SpendKeys {
  readonly redis: ScriptedRedis;
  readonly prefix: string;
  readonly statsKey: string;
  docKey(docId: string): string;
  unitsKey(docId: string, gen: number): string;
  groupsKey(docId: string, gen: number): string;
  noUsageKey(docId: string, gen: number): string;
  spendsKey(docId: string, gen: number): string;
}

/** A settle's id (SETTLE_LUA keeps the last recorded one of each unit). */
export function newSettleId(): string {
  return randomBytes(8).toString('hex');
}

/**
 * Records a unit's result; the first result for a unit wins. With `lock`, writes only while
 * the job's BullMQ lock still holds `token` (a worker that lost its lock writes nothing).
 * Use settleUnit (settle.ts), which also schedules what a settled unit makes due.
 */
export async function settleResult(
  keys: SpendKeys,
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
  /** This settle's id: the same on every try of one answer (hold.ts), so a try after one that went through adds nothing. @defaultValue a new one */
  id: string = newSettleId(),
): Promise<SettleOutcome> {
  const ok = result.ok ? 1 : 0;
  // A failure counts what the engine spent on its rejected answers too. Counts the engine did
  // not report add nothing; the unit is counted in `units_without_usage` instead.
  const due = uncountedSpend({ promptTokens: result.promptTokens ?? null, completionTokens: result.completionTokens ?? null, engineMs: result.engineMs ?? 0 }, counted);
  const prompt = due.promptTokens ?? 0;
  const completion = due.completionTokens ?? 0;
  const engineMs = Math.round(due.engineMs);
  const [status, settled, units, last, groupDone] = await keys.redis.docbatchSettle(
    keys.docKey(docId),
    keys.unitsKey(docId, gen),
    lock?.key ?? `${keys.prefix}:nolock`,
    keys.statsKey,
    keys.groupsKey(docId, gen),
    keys.noUsageKey(docId, gen),
    keys.spendsKey(docId, gen),
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
    // Sent again by ioredis after a reconnect, or tried again by a held answer: the same.
    id,
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
export async function addSpent(keys: SpendKeys, docId: string, gen: number, unit: number, spent: { promptTokens: number | null; completionTokens: number | null; engineMs: number }): Promise<boolean> {
  const counted = await keys.redis.eval(
    SPEND_LUA,
    4,
    keys.docKey(docId),
    keys.statsKey,
    keys.noUsageKey(docId, gen),
    keys.spendsKey(docId, gen),
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
