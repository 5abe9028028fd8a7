"""The fleet's Lua scripts: every state change of a job is one atomic script.

Layout under the prefix ``P`` (``GENIE_REDIS_CHANNEL``):

- ``P:jobs``    hash  id -> job JSON (every job the fleet still remembers)
- ``P:todo``    list  oldest at the head; a push appends, a take pops the head
- ``P:running`` zset  id -> lease deadline (ms, Redis clock)
- ``P:owner``   hash  id -> lease token of the consumer running it
- ``P:queued``  hash  client id -> its jobs waiting in todo (the per-client cap)
- ``P:done`` / ``P:dead``  lists, newest at the head, trimmed to the history limit
- ``P:c:<client>`` hash {node, subject, seq, voice, speed}; ``P:c:<client>:log`` the
  client's numbered frames for resume

Scripts publish the queue counts they change on ``P:events`` themselves: Redis runs
scripts one at a time, so every node sees the counts in the order the changes happened
(a count can never overtake a newer one). Times come from Redis (``TIME``), so the
processes' clocks never decide a lease.
"""

from __future__ import annotations

# Shared helpers, prepended to the scripts that need them.
_LIB = """
local function now_s()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function count(channel, event, n)
  redis.call('PUBLISH', channel, '{"e":"' .. event .. '","v":' .. n .. '}')
end
-- A per-client frame: numbered, kept for resume, published to the client's node even
-- when that is the caller: one subscription then delivers a client's frames in the
-- order Redis numbered them.
local function route(client, log, body, ttl, max_log, node_prefix)
  local seq = redis.call('HINCRBY', client, 'seq', 1)
  local msg = '{"s":' .. seq .. ',' .. string.sub(body, 2)
  redis.call('RPUSH', log, msg)
  redis.call('LTRIM', log, -tonumber(max_log), -1)
  redis.call('EXPIRE', log, ttl)
  redis.call('EXPIRE', client, ttl)
  local node = redis.call('HGET', client, 'node')
  if node then redis.call('PUBLISH', node_prefix .. node, msg) end
  return seq
end
-- A client's jobs waiting in todo, for the per-client cap (JSON null decodes to a
-- truthy cjson.null: only a string is a client).
local function queued(key, job, by)
  if type(job.client_id) ~= 'string' then return end
  if redis.call('HINCRBY', key, job.client_id, by) <= 0 then
    redis.call('HDEL', key, job.client_id)
  end
end
-- Newest first at the head of a history list; forget what falls past the limit.
local function remember(jobs, list, id, limit)
  local n = redis.call('LPUSH', list, id)
  if n > limit then
    local old = redis.call('LRANGE', list, limit, -1)
    for _, gone in ipairs(old) do redis.call('HDEL', jobs, gone) end
    redis.call('LTRIM', list, 0, limit - 1)
    n = limit
  end
  return n
end
"""

# KEYS: jobs todo queued [client log]
# ARGV: id json channel thinking waiting_one waiting_many max_queued max_per_client busy
#       [client ttl max_log node_prefix]
# -> jobs waiting before this one; -1 when the fleet's todo is full, -2 when this
# client's share is (nothing queued; a client-less asker hears ``busy``). In the same
# step the asker hears how long the wait is (routed to it, or published to every node
# without a client) and, with a client, gets ``queued``: both are ahead of its answer
# in its node's subscription.
PUSH = (
    _LIB
    + """
local max_queued, max_per_client = tonumber(ARGV[7]), tonumber(ARGV[8])
if max_queued > 0 and redis.call('LLEN', KEYS[2]) >= max_queued then
  if not KEYS[5] then redis.call('PUBLISH', ARGV[3], '{"a":' .. cjson.encode(ARGV[9]) .. '}') end
  return -1
end
if KEYS[5] and max_per_client > 0
    and tonumber(redis.call('HGET', KEYS[3], ARGV[10]) or '0') >= max_per_client then
  return -2
end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return redis.error_reply('job ' .. ARGV[1] .. ' exists')
end
local n = redis.call('RPUSH', KEYS[2], ARGV[1])
local ahead = n - 1
local say = ARGV[4]
if ahead == 1 then say = ARGV[5]
elseif ahead > 1 then say = string.gsub(ARGV[6], '{n}', tostring(ahead)) end
if KEYS[5] then
  redis.call('HINCRBY', KEYS[3], ARGV[10], 1)
  local who = '{"c":' .. cjson.encode(ARGV[10])
  route(KEYS[4], KEYS[5], who .. ',"a":' .. cjson.encode(say) .. '}', ARGV[11], ARGV[12], ARGV[13])
  local sent = who .. ',"e":"queued","d":{"id_hash":' .. cjson.encode(ARGV[1]) .. '}}'
  route(KEYS[4], KEYS[5], sent, ARGV[11], ARGV[12], ARGV[13])
else
  redis.call('PUBLISH', ARGV[3], '{"a":' .. cjson.encode(say) .. '}')
end
count(ARGV[3], 'todo_update', n)
return ahead
"""
)

# KEYS: jobs todo running owner queued | ARGV: token lease_ms channel -> job JSON or nil
TAKE = (
    _LIB
    + """
local id = redis.call('LPOP', KEYS[2])
while id do
  local raw = redis.call('HGET', KEYS[1], id)
  if raw then
    local job = cjson.decode(raw)
    queued(KEYS[5], job, -1)
    local now = now_s()
    job.state = 'running'
    job.started_at = now
    job.attempts = (tonumber(job.attempts) or 0) + 1
    raw = cjson.encode(job)
    redis.call('HSET', KEYS[1], id, raw)
    redis.call('ZADD', KEYS[3], now * 1000 + tonumber(ARGV[2]), id)
    redis.call('HSET', KEYS[4], id, ARGV[1])
    count(ARGV[3], 'todo_update', redis.call('LLEN', KEYS[2]))
    count(ARGV[3], 'run_update', redis.call('ZCARD', KEYS[3]))
    return raw
  end
  id = redis.call('LPOP', KEYS[2])  -- a forgotten id: skip it
end
return false
"""
)

# KEYS: running owner | ARGV: token lease_ms id... -> how many leases were still ours
RENEW = (
    _LIB
    + """
local deadline = now_s() * 1000 + tonumber(ARGV[2])
local kept = 0
for i = 3, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then
    redis.call('ZADD', KEYS[1], 'XX', deadline, ARGV[i])
    kept = kept + 1
  end
end
return kept
"""
)

# KEYS: jobs running owner history [client log]
# ARGV: id token json limit channel event speech [ttl max_log node_prefix]
# -> size of the history list, or -1 when the lease was lost (another took it over).
# The asker hears ``speech`` (a message JSON) in the same step: routed to it when the
# client keys are given, else published to every node.
FINISH = (
    _LIB
    + """
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return -1 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
local n = remember(KEYS[1], KEYS[4], ARGV[1], tonumber(ARGV[4]))
-- The asker first: its node reads its answer before the counts every client gets.
if KEYS[6] then
  route(KEYS[5], KEYS[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
else
  redis.call('PUBLISH', ARGV[5], ARGV[7])
end
count(ARGV[5], ARGV[6], n)
count(ARGV[5], 'run_update', redis.call('ZCARD', KEYS[2]))
return n
"""
)

# KEYS: jobs todo running owner dead queued | ARGV: max_attempts limit channel
# -> ids taken back from consumers whose lease ran out (their process is gone)
RECLAIM = (
    _LIB
    + """
local now = now_s()
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now * 1000)
if #expired == 0 then return {} end
local dead = 0
-- Newest deadline first, each pushed to the head: the oldest ends up first in line.
for i = #expired, 1, -1 do
  local id = expired[i]
  redis.call('ZREM', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  local raw = redis.call('HGET', KEYS[1], id)
  if raw then
    local job = cjson.decode(raw)
    if (tonumber(job.attempts) or 0) >= tonumber(ARGV[1]) then
      job.state = 'dead'
      job.finished_at = now
      job.error = 'its process stopped answering ' .. job.attempts .. ' times; given up'
      redis.call('HSET', KEYS[1], id, cjson.encode(job))
      dead = remember(KEYS[1], KEYS[5], id, tonumber(ARGV[2]))
    else
      job.state = 'todo'
      redis.call('HSET', KEYS[1], id, cjson.encode(job))
      redis.call('LPUSH', KEYS[2], id)
      queued(KEYS[6], job, 1)
    end
  end
end
count(ARGV[3], 'todo_update', redis.call('LLEN', KEYS[2]))
count(ARGV[3], 'run_update', redis.call('ZCARD', KEYS[3]))
if dead > 0 then count(ARGV[3], 'dead_update', dead) end
return expired
"""
)

# KEYS: client log | ARGV: message ttl max_log node_prefix -> its seq
# One numbered frame to a client, wherever it is (an expired job's notice).
SEND = (
    _LIB
    + """
return route(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
"""
)

# KEYS: jobs todo dead client queued | ARGV: client_id node reason limit channel
# -> JSON of the jobs cancelled; none when the client now lives on another node
CANCEL = (
    _LIB
    + """
local owner = redis.call('HGET', KEYS[4], 'node')
if owner and owner ~= ARGV[2] then return {} end
local cancelled = {}
local now = now_s()
for _, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local raw = redis.call('HGET', KEYS[1], id)
  if raw then
    local job = cjson.decode(raw)
    if job.client_id == ARGV[1] then
      redis.call('LREM', KEYS[2], 1, id)
      job.state = 'dead'
      job.finished_at = now
      job.error = ARGV[3]
      raw = cjson.encode(job)
      redis.call('HSET', KEYS[1], id, raw)
      remember(KEYS[1], KEYS[3], id, tonumber(ARGV[4]))
      cancelled[#cancelled + 1] = raw
    end
  end
end
if #cancelled > 0 then
  redis.call('HDEL', KEYS[5], ARGV[1])
  count(ARGV[5], 'todo_update', redis.call('LLEN', KEYS[2]))
  count(ARGV[5], 'dead_update', redis.call('LLEN', KEYS[3]))
end
return cancelled
"""
)

# KEYS: jobs done dead | ARGV: id channel -> the job JSON (removed only when finished)
DELETE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local state = cjson.decode(raw).state
local list = nil
if state == 'done' then list = KEYS[2] elseif state == 'dead' then list = KEYS[3] end
if list then
  redis.call('LREM', list, 1, ARGV[1])
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('PUBLISH', ARGV[2],
    '{"e":"' .. state .. '_update","v":' .. redis.call('LLEN', list) .. '}')
end
return raw
"""


# KEYS: client log | ARGV: node subject ttl -> {status, seq, voice, speed, frames...}
# status: "ok", "unknown" (no such session) or "forbidden" (another subject's session)
RESUME = """
local info = redis.call('HMGET', KEYS[1], 'seq', 'subject', 'voice', 'speed')
if not info[1] then return {'unknown'} end
if (info[2] or '') ~= ARGV[2] then return {'forbidden'} end
redis.call('HSET', KEYS[1], 'node', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local out = {'ok', info[1], info[3] or '', info[4] or ''}
for _, frame in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do out[#out + 1] = frame end
return out
"""
