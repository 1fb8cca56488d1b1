-- submit: store a validated job and queue it, atomically.
-- ARGV: 1 prefix, 2 id, 3 type, 4 pool, 5 priority (0 high, 1 normal, 2 low),
--       6 spec JSON, 7 webhook JSON or "", 8 metadata JSON or "", 9 max attempts,
--       10 max queue depth (0 = unlimited), 11 idempotency key or "",
--       12 idempotency TTL seconds, 13 input bytes or "", 14 owner (API key name)
-- Returns {"created", id} | {"exists", id} | {"full", depth}
local id, jtype, pool, prio = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local idem = ARGV[11]
if idem ~= '' then
  local prev = redis.call('GET', P .. 'idem:' .. idem)
  if prev and redis.call('EXISTS', jkey(prev)) == 1 then return {'exists', prev} end
end
local max_depth = tonumber(ARGV[10])
if max_depth > 0 then
  local depth = redis.call('ZCARD', P .. 'queued:' .. pool)
  if depth >= max_depth then return {'full', depth} end
end

-- The time as a string built from TIME's digits: numbers passed to
-- redis.call are formatted with printf("%.17g") by Redis, a measurable part
-- of this hot path, so every argument below is passed as a string.
local t = redis.call('TIME')
local now = t[1] .. string.sub(string.rep('0', 6 - #t[2]) .. t[2], 1, 3)
local stream = P .. 'queue:' .. pool .. ':' .. prio
-- NOMKSTREAM: one call in the usual case; only a missing stream costs more
local entry = redis.call('XADD', stream, 'NOMKSTREAM', '*', 'job', id)
if not entry then
  redis.pcall('XGROUP', 'CREATE', stream, GROUP, '0', 'MKSTREAM')
  -- a pool is remembered when its first stream appears (not on every job)
  redis.call('SADD', P .. 'pools', pool)
  entry = redis.call('XADD', stream, '*', 'job', id)
end
local k = jkey(id)
redis.call('HSET', k, 'id', id, 'type', jtype, 'state', 'queued', 'pool', pool, 'priority', prio,
  'spec', ARGV[6], 'webhook', ARGV[7], 'metadata', ARGV[8], 'max_attempts', ARGV[9],
  'attempts', '0', 'created_at', now, 'updated_at', now, 'progress', '0', 'images', '0',
  'stream', stream, 'entry', entry, 'owner', ARGV[14], 'cancel', '0')
if ARGV[13] ~= '' then redis.call('SET', k .. ':input', ARGV[13]) end
redis.call('ZADD', P .. 'queued:' .. pool, now, id)
redis.call('ZADD', P .. 'jobs', now, id)
redis.call('ZADD', P .. 'jobs:state:queued', now, id)
redis.call('HINCRBY', P .. 'stats', 'submitted|' .. jtype, '1')
-- capped at 1000; trimmed to the newest 500 so that, with no worker
-- consuming, the trim runs once per 500 submissions rather than on each
if redis.call('RPUSH', P .. 'wake:' .. pool, id) > 1000 then
  redis.call('LTRIM', P .. 'wake:' .. pool, '-500', '-1')
end
if idem ~= '' then redis.call('SET', P .. 'idem:' .. idem, id, 'EX', ARGV[12]) end
-- The first event goes to the job's event stream only: nobody can be
-- subscribed to a job that did not exist a moment ago, so no PUBLISH, and
-- the payload is fixed text (this is the hot path of every submission).
redis.call('XADD', k .. ':events', '*', 'event', 'state', 'data',
  '{"state":"queued","job":"' .. id .. '","event":"state"}')
return {'created', id}
