/**
 * Lua run inside Redis so that each of these steps is atomic. Keys a script derives from the
 * prefix (a document's results of a generation) share the document's hash slot when the prefix
 * is a {hashtag}, as on Redis Cluster (docs/operations.md).
 */

/**
 * KEYS: doc hash, results hash (of the job's generation), job lock key, global stats hash, groups
 *       hash, the generation's bitmap of units without usage, the generation's hash of ids of
 *       counts (SPEND_LUA's; a unit's last settle recorded is `s:<unit>` there)
 * ARGV: unit, gen, result JSON, ok (1/0), lock token ('' = no check), now, prompt tokens,
 *       completion tokens, engine ms (spent on the unit, answered or failed), group field
 *       ('' = none), group size, reopens when the unit's inputs were read ('' = no check),
 *       1 when the engine did not report the unit's tokens (counted in units_without_usage once
 *       a unit: a unit reopened and settled again without usage is not counted twice), the
 *       settle's id
 * A written generation takes no result (its results left Redis with the write; a retry restores
 * them before it reopens units): a settle that lands after it, without a lock, is a duplicate.
 * The same settle run again (its reply lost when the connection dropped; ioredis sends unanswered
 * commands again on reconnect) finds its id kept for the unit and answers 2, before any other
 * check: it was recorded and counted by its first run, even if its document was written since
 * (when its result can no longer be told from another's).
 * Returns {status, settled, units, last, groupDone}: status 1 recorded, 2 recorded by an earlier
 * run of this settle, 0 duplicate, -1 lock lost, -2 stale generation, -3 no such document, -4 a
 * unit of the document was reopened since the inputs were read (a conversation's summary made
 * from parts that are running again); groupDone is 1 for exactly one call: the one that settled
 * the last chunk of a conversation whose summary is made from its chunks.
 */
export const SETTLE_LUA = `
local gen = redis.call('HGET', KEYS[1], 'gen')
if not gen then return {-3, 0, 0, 0, 0} end
if redis.call('HGET', KEYS[7], 's:' .. ARGV[1]) == ARGV[14] then return {2, redis.call('HLEN', KEYS[2]), tonumber(redis.call('HGET', KEYS[1], 'units')), 0, 0} end
if tonumber(gen) ~= tonumber(ARGV[2]) then return {-2, 0, 0, 0, 0} end
if ARGV[5] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[5] then return {-1, 0, 0, 0, 0} end
if redis.call('HGET', KEYS[1], 'state') == 'written' then return {0, 0, tonumber(redis.call('HGET', KEYS[1], 'units')), 0, 0} end
if ARGV[12] ~= nil and ARGV[12] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'reopens') or '0') ~= tonumber(ARGV[12]) then return {-4, 0, 0, 0, 0} end
local units = tonumber(redis.call('HGET', KEYS[1], 'units'))
local added = redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3])
local settled = redis.call('HLEN', KEYS[2])
if added == 0 then return {0, settled, units, 0, 0} end
redis.call('HSET', KEYS[7], 's:' .. ARGV[1], ARGV[14])
redis.call('PEXPIRE', KEYS[7], 86400000)
local groupDone = 0
if ARGV[10] ~= '' then
  if redis.call('HINCRBY', KEYS[5], ARGV[10], 1) == tonumber(ARGV[11]) then groupDone = 1 end
end
redis.call('HINCRBY', KEYS[1], 'prompt_tokens', ARGV[7])
redis.call('HINCRBY', KEYS[1], 'completion_tokens', ARGV[8])
if ARGV[13] == '1' and redis.call('SETBIT', KEYS[6], ARGV[1], 1) == 0 then redis.call('HINCRBY', KEYS[1], 'units_without_usage', 1) end
redis.call('HINCRBY', KEYS[1], 'engine_ms', ARGV[9])
redis.call('HINCRBY', KEYS[4], 'engine_ms', ARGV[9])
if ARGV[4] == '1' then
  redis.call('HINCRBY', KEYS[1], 'done', 1)
  redis.call('HINCRBY', KEYS[4], 'units_done', 1)
else
  redis.call('HINCRBY', KEYS[4], 'units_failed', 1)
  redis.call('HINCRBY', KEYS[1], 'failed', 1)
end
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[6])
if settled >= units then
  local state = redis.call('HGET', KEYS[1], 'state')
  redis.call('HSET', KEYS[1], 'finished_at', ARGV[6])
  if state ~= 'enqueuing' then redis.call('HSET', KEYS[1], 'state', 'complete') end
  return {1, settled, units, 1, groupDone}
end
return {1, settled, units, 0, groupDone}
`;

/**
 * What the engine answered for a unit whose attempt then ended without settling it (an error
 * after a rejected answer, an engine gone down, a lost lock, a summary whose parts were
 * reopened): spent all the same, so counted in the record now, as SETTLE_LUA counts a unit's
 * answers. Not in the record once the generation is written (its report is out; a late
 * duplicate changes nothing), nor for another generation or a document gone; its engine time
 * counts in the totals of all documents all the same (what BUDGET_USD is checked against: the
 * GPU was paid for).
 * Each count has an id, kept as the unit's last (a hash per generation, for a day): the same
 * count run again (its reply lost when the connection dropped; ioredis sends unanswered commands
 * again on reconnect) adds nothing.
 * KEYS: doc hash, global stats hash, the generation's bitmap of units without usage, the
 *       generation's hash of the last count's id of each unit
 * ARGV: gen, unit, prompt tokens, completion tokens, engine ms, 1 when a count was not reported,
 *       the count's id
 * Returns 1 when counted in the record, 0 when not (the totals of all documents count its engine
 * time either way), -1 when this count ran before (nothing added).
 */
export const SPEND_LUA = `
if redis.call('HGET', KEYS[4], ARGV[2]) == ARGV[7] then return -1 end
redis.call('HSET', KEYS[4], ARGV[2], ARGV[7])
redis.call('PEXPIRE', KEYS[4], 86400000)
redis.call('HINCRBY', KEYS[2], 'engine_ms', ARGV[5])
local gen = redis.call('HGET', KEYS[1], 'gen')
if not gen or tonumber(gen) ~= tonumber(ARGV[1]) then return 0 end
if redis.call('HGET', KEYS[1], 'state') == 'written' then return 0 end
redis.call('HINCRBY', KEYS[1], 'prompt_tokens', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'completion_tokens', ARGV[4])
if ARGV[6] == '1' and redis.call('SETBIT', KEYS[3], ARGV[2], 1) == 0 then redis.call('HINCRBY', KEYS[1], 'units_without_usage', 1) end
redis.call('HINCRBY', KEYS[1], 'engine_ms', ARGV[5])
return 1
`;

/**
 * KEYS: doc hash, docs zset, active zset, queues set
 * ARGV: meta JSON, units, feed units, reset (1/0), now, now ms, queue, priority, job name,
 *       password ('' = none), prefix
 * A new document starts at generation 1. An existing one keeps its generation and results
 * unless reset, which bumps the generation, clears its counters and lets the old generation's
 * results expire within an hour (a writer still reading them finishes with them intact).
 * Returns the generation.
 */
export const REGISTER_LUA = `
local gen = redis.call('HGET', KEYS[1], 'gen')
if gen and ARGV[4] ~= '1' then
  redis.call('HSET', KEYS[1], 'meta', ARGV[1], 'priority', ARGV[8])
  if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'password', ARGV[10]) end
  redis.call('PERSIST', KEYS[1])
  return tonumber(gen)
end
local next = 1
if gen then
  next = tonumber(gen) + 1
  local base = KEYS[1]
  redis.call('EXPIRE', base .. ':r:' .. gen, 3600)
  redis.call('EXPIRE', base .. ':g:' .. gen, 3600)
  redis.call('EXPIRE', base .. ':nu:' .. gen, 3600)
end
local id = string.sub(KEYS[1], string.len(ARGV[11]) + 6)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'meta', ARGV[1], 'gen', next, 'units', ARGV[2], 'feed_end', ARGV[3], 'fed', 0,
  'state', 'enqueuing', 'done', 0, 'failed', 0, 'prompt_tokens', 0, 'completion_tokens', 0, 'units_without_usage', 0, 'engine_ms', 0,
  'created_at', ARGV[5], 'queue', ARGV[7], 'priority', ARGV[8], 'job_name', ARGV[9])
if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'password', ARGV[10]) end
redis.call('ZADD', KEYS[2], 'NX', ARGV[6], id)
redis.call('ZADD', KEYS[3], ARGV[6], id)
redis.call('SADD', KEYS[4], ARGV[7])
return next
`;

/**
 * Puts a document (back) in line to be fed: KEYS round zset, turn counter, doc hash, backlog zset;
 * ARGV doc id, restart (1: from unit 0 again, skipping settled units). A document already in the
 * round or the backlog stays where it is, unless its priority changed since it got there (enqueued
 * again with another --priority): then it goes to the end of its new class there (a higher class
 * in the backlog enters the round at the next feed). Otherwise it joins the backlog at the end of
 * its priority class (so documents enqueued one after another keep that order), and enters the
 * round at a feed.
 */
export const FEED_ADD_LUA = `
if ARGV[2] == '1' then redis.call('HSET', KEYS[3], 'fed', 0) end
local CLASS = 1099511627776
local p = tonumber(redis.call('HGET', KEYS[3], 'priority') or '0')
local function waiting(key)
  local score = redis.call('ZSCORE', key, ARGV[1])
  if not score then return false end
  if math.floor(tonumber(score) / CLASS) ~= -p then
    redis.call('ZADD', key, -p * CLASS + redis.call('INCR', KEYS[2]), ARGV[1])
  end
  return true
end
if waiting(KEYS[1]) then return 0 end
if waiting(KEYS[4]) then return 1 end
local t = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[4], 'NX', -p * CLASS + t, ARGV[1])
return 1
`;

/**
 * The fair feeder: takes up to ARGV[2] units from the documents of one queue, round-robin among
 * the documents in its round (at most ARGV[5] of them), highest priority class first, at most
 * ARGV[3] units from a document per turn, skipping units that already have a result, looking at
 * no more than ARGV[4] units in all. The round is filled from the backlog (oldest first, by class);
 * a document of a higher class than the round's lowest enters even when the round is full.
 * KEYS: round zset, turn counter, backlog zset. ARGV: prefix, max units, slice, max scanned,
 * most documents in the round.
 * Returns "docId|gen|unit|jobName" strings. A document leaves the round when all its units are fed.
 */
export const FEED_LUA = `
local CLASS = 1099511627776
local function classOf(score) return math.floor(tonumber(score) / CLASS) end
local most = tonumber(ARGV[5])
-- fill the round from the backlog
while true do
  local head = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  if #head == 0 then break end
  local admit = redis.call('ZCARD', KEYS[1]) < most
  if not admit then
    local worst = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
    admit = #worst > 0 and classOf(head[2]) < classOf(worst[2])
  end
  if not admit then break end
  redis.call('ZREM', KEYS[3], head[1])
  redis.call('ZADD', KEYS[1], head[2], head[1])
end
local out = {}
local n = 0
local scanned = 0
local maxUnits = tonumber(ARGV[2])
local slice = tonumber(ARGV[3])
local maxScan = tonumber(ARGV[4])
while n < maxUnits and scanned < maxScan do
  local top = redis.call('ZPOPMIN', KEYS[1])
  if #top == 0 then break end
  local id = top[1]
  local doc = ARGV[1] .. ':doc:' .. id
  local h = redis.call('HMGET', doc, 'gen', 'fed', 'feed_end', 'job_name', 'priority')
  if h[1] then
    local fed = tonumber(h[2] or '0')
    local last = tonumber(h[3] or '0')
    local results = doc .. ':r:' .. h[1]
    local taken = 0
    while fed < last and taken < slice and n < maxUnits and scanned < maxScan do
      scanned = scanned + 1
      if redis.call('HEXISTS', results, fed) == 0 then
        out[#out + 1] = id .. '|' .. h[1] .. '|' .. fed .. '|' .. (h[4] or 'unit')
        taken = taken + 1
        n = n + 1
      end
      fed = fed + 1
    end
    redis.call('HSET', doc, 'fed', fed)
    if fed < last then
      local t = redis.call('INCR', KEYS[2])
      redis.call('ZADD', KEYS[1], -tonumber(h[5] or '0') * CLASS + t, id)
    else
      -- fully fed: a place in the round may be free for the next document of the backlog
      local head = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
      if #head > 0 and redis.call('ZCARD', KEYS[1]) < most then
        redis.call('ZREM', KEYS[3], head[1])
        redis.call('ZADD', KEYS[1], head[2], head[1])
      end
    end
  end
end
return out
`;

/**
 * Counts the units a slice of a feeding round (or backlog) has still to feed, for autoscaling
 * and the operator's gauges: KEYS round or backlog zset; ARGV prefix, the score to start after
 * ('' from the first), count. Every member's score is unique (a turn counter), so paging by score
 * neither skips nor repeats a document that stays while others come and go.
 * A document's share is its units from its cursor on (`feed_end - fed`) less those already
 * settled there. Its results hash also holds units it does not feed (a conversation's summary,
 * numbered from `feed_end` to `units`), so results beyond the cursor within the fed range are at
 * least `results - fed - (units - feed_end)`: the share is never below the exact count, and equals
 * it when the cursor is at 0 (a retry, once summaries have settled) or no result lies beyond it.
 * Returns {units, documents looked at, the last score ('' when none)}.
 */
export const FEED_COUNT_LUA = `
local ids
if ARGV[2] == '' then
  ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
else
  ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
end
local units = 0
for i = 1, #ids, 2 do
  local doc = ARGV[1] .. ':doc:' .. ids[i]
  local h = redis.call('HMGET', doc, 'gen', 'fed', 'feed_end', 'units')
  if h[1] then
    local fed = tonumber(h[2] or '0')
    local last = tonumber(h[3] or '0')
    local left = last - fed
    if left > 0 then
      local others = math.max(0, tonumber(h[4] or '0') - last)
      local beyond = redis.call('HLEN', doc .. ':r:' .. h[1]) - fed - others
      if beyond > 0 then left = left - beyond end
      if left > 0 then units = units + left end
    end
  end
end
return {units, #ids / 2, ids[#ids] or ''}
`;

/**
 * Marks a generation written and retires it, in one step, so that no retry can land between the
 * two: KEYS doc hash, active zset, results hash, groups hash, bitmap of units without usage
 * (kept as long as the record: a retry's units settled again are not counted again), hash of
 * the ids of counts and settles (kept an hour from now on, not a day: ~80 bytes a unit; a count
 * or settle sent again after its reply was lost comes on reconnect). ARGV: gen, now, files JSON, doc id,
 * reopens (the record's count when the writer read it), retention seconds, lean meta JSON ('' =
 * keep), done and failed as the writer counted them ('' = keep the counters).
 * Written only if the generation is current, no unit was reopened since the writer read the
 * record, and every unit has a result: then the password, write error and feeder fields go, the
 * document leaves the active set, its results and groups leave Redis (they are archived) and the
 * record expires after the retention. Returns 1 written, 0 stale generation, 2 changed (reopened
 * since, or results missing: nothing done), 3 already written.
 */
export const MARK_WRITTEN_LUA = `
local h = redis.call('HMGET', KEYS[1], 'gen', 'reopens', 'units', 'state')
if tonumber(h[1] or '-1') ~= tonumber(ARGV[1]) then return 0 end
if h[4] == 'written' then return 3 end
if tonumber(h[2] or '0') ~= tonumber(ARGV[5]) then return 2 end
if redis.call('HLEN', KEYS[3]) < tonumber(h[3] or '0') then return 2 end
redis.call('HSET', KEYS[1], 'state', 'written', 'written_at', ARGV[2], 'files', ARGV[3])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'meta', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'done', ARGV[8], 'failed', ARGV[9]) end
redis.call('HDEL', KEYS[1], 'password', 'write_error', 'fed', 'feed_end', 'job_name', 'refeeds', 'queue', 'priority')
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('UNLINK', KEYS[3], KEYS[4])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[5], ARGV[6])
redis.call('PEXPIRE', KEYS[6], 3600000)
return 1
`;

/**
 * Puts a written document's archived results back, whole or not at all: KEYS doc hash, results
 * hash, the filled temporary hash (it expires within the hour if its filler dies). ARGV: gen,
 * reopens (the record's count read before the archive). The temporary becomes the results only if
 * the generation is current, no results are there, and no unit was reopened since (otherwise the
 * archive read may be older than a write that ended meanwhile); its expiry goes with it (the
 * reopen that follows makes the results stay; an unused restore goes within the hour).
 * Returns 1 restored, 0 results already there, -1 stale generation, -2 reopened since (read the
 * archive again).
 */
export const RESTORE_LUA = `
local h = redis.call('HMGET', KEYS[1], 'gen', 'reopens')
local outcome = 1
if tonumber(h[1] or '-1') ~= tonumber(ARGV[1]) then outcome = -1
elseif redis.call('EXISTS', KEYS[2]) == 1 then outcome = 0
elseif tonumber(h[2] or '0') ~= tonumber(ARGV[2]) then outcome = -2 end
if outcome == 1 and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('RENAME', KEYS[3], KEYS[2])
else
  redis.call('DEL', KEYS[3])
end
return outcome
`;

/**
 * Reopens failed units of a generation for `docbatch retry` (or a Bull Board retry of one unit):
 * KEYS doc hash, results hash, active zset, groups hash, bitmap of units without usage (kept
 * with the record).
 * ARGV: gen, codes (JSON array; [] = any), units (JSON array; [] = any), now ms, doc id,
 *       summary units (JSON object: chunk unit → its conversation's summary unit, for the
 *       chunks among the candidates), groups (JSON object: summary unit → [first chunk, chunks]),
 *       now as an ISO string.
 * The run that follows is timed from here (`resumed_at`, and `resumed_from`: units settled at
 * the reopen), so its rate and time left are not spread over the time since the first run.
 * Deletes the matching failed results and fixes the counters; a reopened chunk no longer counts
 * towards its conversation's summary, and that summary (answered from the chunk's failure) is
 * reopened with it. The count of a reopened chunk's group is set from the chunk results there
 * are, not decremented: a written document's groups left Redis with its results, and only the
 * results come back from the archive. Sets the state to running, counts the reopen (`reopens`: a write that read
 * the record before it is not marked written) and keeps the results (a restored hash expires
 * otherwise). Returns the units reopened, -1 for a stale generation, or -2 when the document is
 * written and its results are not in Redis (retired since they were restored: restore again).
 */
export const REOPEN_LUA = `
local h = redis.call('HMGET', KEYS[1], 'gen', 'state')
if tonumber(h[1] or '-1') ~= tonumber(ARGV[1]) then return -1 end
if h[2] == 'written' and redis.call('EXISTS', KEYS[2]) == 0 then return -2 end
local codes = cjson.decode(ARGV[2])
local units = cjson.decode(ARGV[3])
local summaries = cjson.decode(ARGV[6])
local groups = cjson.decode(ARGV[7])
local touched = {}
local wantCode = {}
for _, c in ipairs(codes) do wantCode[c] = true end
local reopened = {}
local function drop(field)
  local raw = redis.call('HGET', KEYS[2], field)
  if not raw then return false end
  local ok, r = pcall(cjson.decode, raw)
  if not ok then return false end
  redis.call('HDEL', KEYS[2], field)
  if r['ok'] == false then redis.call('HINCRBY', KEYS[1], 'failed', -1) else redis.call('HINCRBY', KEYS[1], 'done', -1) end
  reopened[#reopened + 1] = tonumber(field)
  return true
end
local function candidate(field)
  local raw = redis.call('HGET', KEYS[2], field)
  if not raw then return false end
  local ok, r = pcall(cjson.decode, raw)
  return ok and r['ok'] == false and (#codes == 0 or wantCode[r['code']])
end
local fields
if #units > 0 then
  fields = {}
  for _, u in ipairs(units) do fields[#fields + 1] = tostring(u) end
else
  fields = redis.call('HKEYS', KEYS[2])
end
for _, field in ipairs(fields) do
  if candidate(field) and drop(field) then
    local summary = summaries[field]
    if summary then
      touched[tostring(summary)] = true
      drop(tostring(summary))
    end
  end
end
for summary in pairs(touched) do
  local range = groups[summary]
  local present = 0
  for unit = range[1], range[1] + range[2] - 1 do
    present = present + redis.call('HEXISTS', KEYS[2], tostring(unit))
  end
  redis.call('HSET', KEYS[4], summary, present)
end
if #reopened > 0 then
  local left = redis.call('HMGET', KEYS[1], 'done', 'failed')
  redis.call('HSET', KEYS[1], 'state', 'running', 'resumed_at', ARGV[8], 'resumed_from', tonumber(left[1] or '0') + tonumber(left[2] or '0'))
  redis.call('HINCRBY', KEYS[1], 'reopens', 1)
  redis.call('HDEL', KEYS[1], 'finished_at', 'write_error')
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
  redis.call('PERSIST', KEYS[5])
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
end
return reopened
`;
