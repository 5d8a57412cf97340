/** Lua run inside Redis so that each of these steps is atomic. */

/**
 * KEYS: doc hash, units hash, job lock key, global stats hash, groups hash
 * ARGV: unit, gen, result JSON, ok (1/0), lock token ('' = no check), now, prompt tokens,
 *       completion tokens, engine ms, group field ('' = none), group size
 * Returns {status, settled, units, last, groupDone}: status 1 recorded, 0 duplicate, -1 lock
 * lost, -2 stale generation, -3 no such document; groupDone is 1 for exactly one call: the one
 * that settled the last chunk of a conversation whose summary is made from its chunks.
 */
export const SETTLE_LUA = `
local gen = redis.call('HGET', KEYS[1], 'gen')
if not gen then return {-3, 0, 0, 0, 0} end
if tonumber(gen) ~= tonumber(ARGV[2]) then return {-2, 0, 0, 0, 0} end
if ARGV[5] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[5] then return {-1, 0, 0, 0, 0} end
local units = tonumber(redis.call('HGET', KEYS[1], 'units'))
local added = redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3])
local settled = redis.call('HLEN', KEYS[2])
if added == 0 then return {0, settled, units, 0, 0} end
local groupDone = 0
if ARGV[10] ~= '' then
  if redis.call('HINCRBY', KEYS[5], ARGV[10], 1) == tonumber(ARGV[11]) then groupDone = 1 end
end
if ARGV[4] == '1' then
  redis.call('HINCRBY', KEYS[1], 'done', 1)
  redis.call('HINCRBY', KEYS[1], 'prompt_tokens', ARGV[7])
  redis.call('HINCRBY', KEYS[1], 'completion_tokens', ARGV[8])
  redis.call('HINCRBY', KEYS[1], 'engine_ms', ARGV[9])
  redis.call('HINCRBY', KEYS[4], 'engine_ms', ARGV[9])
  redis.call('HINCRBY', KEYS[4], 'units_done', 1)
else
  redis.call('HINCRBY', KEYS[4], 'units_failed', 1)
  redis.call('HINCRBY', KEYS[1], 'failed', 1)
end
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[6])
if settled == units then
  local state = redis.call('HGET', KEYS[1], 'state')
  redis.call('HSET', KEYS[1], 'finished_at', ARGV[6])
  if state ~= 'enqueuing' then redis.call('HSET', KEYS[1], 'state', 'complete') end
  return {1, settled, units, 1, groupDone}
end
return {1, settled, units, 0, groupDone}
`;

/**
 * KEYS: doc hash, units hash, groups hash
 * ARGV: meta JSON, units, reset (1/0), now
 * A new document starts at generation 1. An existing one keeps its generation and results
 * unless reset, which bumps the generation and clears results and counters.
 * Returns the generation.
 */
export const RESET_LUA = `
local gen = redis.call('HGET', KEYS[1], 'gen')
if gen and ARGV[3] ~= '1' then
  redis.call('HSET', KEYS[1], 'meta', ARGV[1])
  return tonumber(gen)
end
local next = 1
if gen then next = tonumber(gen) + 1 end
redis.call('DEL', KEYS[2])
redis.call('DEL', KEYS[3])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'meta', ARGV[1], 'gen', next, 'units', ARGV[2], 'state', 'enqueuing',
  'done', 0, 'failed', 0, 'prompt_tokens', 0, 'completion_tokens', 0, 'engine_ms', 0, 'created_at', ARGV[4])
return next
`;
