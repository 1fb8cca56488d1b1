-- tile_release: a worker shutting down (SIGTERM past its drain time) hands
-- its tile back: queued again at once as a fresh entry of the same stream;
-- the attempt does not count.
-- ARGV: 1 prefix, 2 job id, 3 tile index, 4 worker
-- Returns {"released"} | {"stale"}
local id, tile, worker = ARGV[2], ARGV[3], ARGV[4]
local k = jkey(id)
local tk = k .. ':tile:' .. tile
local t = redis.call('HMGET', tk, 'state', 'worker', 'attempts', 'stream', 'entry')
if t[1] ~= 'running' or t[2] ~= worker then return {'stale'} end
local j = redis.call('HMGET', k, 'state', 'pool')
if j[1] ~= 'running' then return {'stale'} end
redis.call('XACK', t[4], GROUP, t[5])
redis.call('XDEL', t[4], t[5])
local e = redis.call('XADD', t[4], '*', 'job', id, 'tile', tile)
redis.call('HSET', tk, 'state', 'queued', 'worker', '', 'entry', e,
  'attempts', math.max(0, (tonumber(t[3]) or 1) - 1))
redis.call('RPUSH', P .. 'wake:' .. j[2], id)
emit(id, 'tile', {tile = tonumber(tile), state = 'queued', reason = 'released by worker ' .. worker})
return {'released'}
