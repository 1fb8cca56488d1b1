-- release: a worker that is shutting down (SIGTERM) hands its running job
-- back; it is queued again at once as a fresh stream entry, and the attempt
-- does not count against max_attempts.
-- ARGV: 1 prefix, 2 id, 3 worker
-- Returns {"released"} | {"stale"}
local id, worker = ARGV[2], ARGV[3]
local k = jkey(id)
local j = redis.call('HMGET', k, 'state', 'worker', 'attempts', 'stream', 'pool', 'created_at')
if j[1] ~= 'running' or j[2] ~= worker then return {'stale'} end
local now = now_ms()
drop_entry(id)
local entry = redis.call('XADD', j[4], '*', 'job', id)
redis.call('HSET', k, 'state', 'queued', 'worker', '', 'entry', entry, 'updated_at', now,
  'attempts', math.max(0, (tonumber(j[3]) or 1) - 1), 'progress', 0)
redis.call('ZADD', P .. 'queued:' .. j[5], tonumber(j[6]), id)
index_state(id, 'running', 'queued', now)
redis.call('RPUSH', P .. 'wake:' .. j[5], id)
emit(id, 'state', {state = 'queued', reason = 'released by worker ' .. worker})
return {'released'}
