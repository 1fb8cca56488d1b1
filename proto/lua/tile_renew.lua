-- tile_renew: the heartbeat of a worker rendering a tile keeps the tile's
-- lease alive (as renew does for a job) while the tile is still this
-- worker's and its job still runs; answers the job's cancel flag.
-- ARGV: 1 prefix, 2 job id, 3 tile index, 4 worker
-- Returns {"ok", cancel 0|1} | {"lost"}
local id, tile, worker = ARGV[2], ARGV[3], ARGV[4]
local k = jkey(id)
local t = redis.call('HMGET', k .. ':tile:' .. tile, 'state', 'worker', 'stream', 'entry')
if t[1] ~= 'running' or t[2] ~= worker then return {'lost'} end
local j = redis.call('HMGET', k, 'state', 'cancel')
if j[1] ~= 'running' then return {'lost'} end
redis.call('XCLAIM', t[3], GROUP, worker, 0, t[4], 'JUSTID')
return {'ok', tonumber(j[2]) or 0}
