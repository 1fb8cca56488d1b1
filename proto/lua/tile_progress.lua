-- tile_progress: a worker rendering a tile reports its sampling progress;
-- it is kept on the tile record (the job's own progress counts finished
-- tiles, see tile_finish). Answers the job's cancel flag.
-- ARGV: 1 prefix, 2 job id, 3 tile index, 4 worker, 5 progress 0..1, 6 step, 7 steps
-- Returns {"ok", cancel 0|1} | {"lost"}
local id, tile, worker = ARGV[2], ARGV[3], ARGV[4]
local k = jkey(id)
local tk = k .. ':tile:' .. tile
local t = redis.call('HMGET', tk, 'state', 'worker')
if t[1] ~= 'running' or t[2] ~= worker then return {'lost'} end
local j = redis.call('HMGET', k, 'state', 'cancel')
if j[1] ~= 'running' then return {'lost'} end
redis.call('HSET', tk, 'progress', ARGV[5], 'step', ARGV[6], 'steps', ARGV[7])
return {'ok', tonumber(j[2]) or 0}
