-- renew: the running job's lease is kept alive by its worker's heartbeat
-- thread; the pending entry's idle time is reset only while the job is still
-- this worker's, so a stalled worker that wakes up cannot take a reclaimed
-- job back.
-- ARGV: 1 prefix, 2 id, 3 worker
-- Returns {"ok", cancel 0|1} | {"lost"}
local id, worker = ARGV[2], ARGV[3]
local k = jkey(id)
local j = redis.call('HMGET', k, 'state', 'worker', 'stream', 'entry', 'cancel')
if j[1] ~= 'running' or j[2] ~= worker then return {'lost'} end
redis.call('XCLAIM', j[3], GROUP, worker, 0, j[4], 'JUSTID')
return {'ok', tonumber(j[5]) or 0}
