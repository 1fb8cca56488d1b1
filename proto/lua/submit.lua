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
local depth = redis.call('ZCARD', P .. 'queued:' .. pool)
local max_depth = tonumber(ARGV[10])
if max_depth > 0 and depth >= max_depth then return {'full', depth} end

local now = now_ms()
local stream = P .. 'queue:' .. pool .. ':' .. prio
if redis.call('EXISTS', stream) == 0 then
  redis.pcall('XGROUP', 'CREATE', stream, GROUP, '0', 'MKSTREAM')
end
local entry = redis.call('XADD', stream, '*', 'job', id)
local k = jkey(id)
redis.call('HSET', k, 'id', id, 'type', jtype, 'state', 'queued', 'pool', pool, 'priority', prio,
  'spec', ARGV[6], 'webhook', ARGV[7], 'metadata', ARGV[8], 'max_attempts', ARGV[9],
  'attempts', 0, 'created_at', now, 'updated_at', now, 'progress', 0, 'images', 0,
  'stream', stream, 'entry', entry, 'owner', ARGV[14], 'cancel', 0)
if ARGV[13] ~= '' then redis.call('SET', k .. ':input', ARGV[13]) end
redis.call('ZADD', P .. 'queued:' .. pool, now, id)
redis.call('ZADD', P .. 'jobs', now, id)
index_state(id, nil, 'queued', now)
redis.call('SADD', P .. 'pools', pool)
redis.call('HINCRBY', P .. 'stats', 'submitted|' .. jtype, 1)
if redis.call('RPUSH', P .. 'wake:' .. pool, id) > 1000 then
  redis.call('LTRIM', P .. 'wake:' .. pool, -1000, -1)
end
if idem ~= '' then redis.call('SET', P .. 'idem:' .. idem, id, 'EX', tonumber(ARGV[12])) end
-- The first event goes to the job's event stream only: nobody can be
-- subscribed to a job that did not exist a moment ago, so no PUBLISH, and
-- the payload is fixed text (this is the hot path of every submission).
redis.call('XADD', k .. ':events', 'MAXLEN', '~', 1000, '*', 'event', 'state', 'data',
  '{"state":"queued","job":"' .. id .. '","event":"state"}')
return {'created', id}
