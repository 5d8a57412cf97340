/**
 * The record's Lua scripts (scripts.ts) as ioredis commands: defined once per connection, and
 * typed, so DocStore and its parts (settle-spend.ts, restore.ts) call them by name.
 */
import type { Redis } from 'ioredis';
import { MARK_WRITTEN_LUA, REGISTER_LUA, REOPEN_LUA, RESTORE_LUA, SETTLE_LUA } from './scripts.ts';

export interface ScriptedRedis extends Redis {
  docbatchSettle(docKey: string, unitsKey: string, lockKey: string, statsKey: string, groupsKey: string, noUsageKey: string, spendsKey: string, ...args: Array<string | number>): Promise<[number, number, number, number, number]>;
  docbatchRegister(docKey: string, docsKey: string, activeKey: string, queuesKey: string, ...args: Array<string | number>): Promise<number>;
  docbatchMarkWritten(docKey: string, activeKey: string, unitsKey: string, groupsKey: string, noUsageKey: string, spendsKey: string, ...args: Array<string | number>): Promise<number>;
  docbatchReopen(docKey: string, unitsKey: string, activeKey: string, groupsKey: string, noUsageKey: string, ...args: Array<string | number>): Promise<number[] | number>;
  docbatchRestore(docKey: string, unitsKey: string, tempKey: string, ...args: Array<string | number>): Promise<number>;
}

/** Defines the commands on `redis` unless they are there already (one connection, several stores). */
export function defineDocCommands(redis: Redis): ScriptedRedis {
  if (!('docbatchSettle' in redis)) {
    redis.defineCommand('docbatchSettle', { numberOfKeys: 7, lua: SETTLE_LUA });
    redis.defineCommand('docbatchRegister', { numberOfKeys: 4, lua: REGISTER_LUA });
    redis.defineCommand('docbatchMarkWritten', { numberOfKeys: 6, lua: MARK_WRITTEN_LUA });
    redis.defineCommand('docbatchReopen', { numberOfKeys: 5, lua: REOPEN_LUA });
    redis.defineCommand('docbatchRestore', { numberOfKeys: 3, lua: RESTORE_LUA });
  }
  return redis as ScriptedRedis;
}
