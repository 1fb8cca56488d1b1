-- finish: the worker stored its result images (job:<id>:image:<attempt>:<n>)
-- and now writes the final state and acknowledges the stream entry.
-- ARGV: 1 prefix, 2 id, 3 worker, 4 state (succeeded|failed|canceled), 5 error code,
--       6 error message, 7 number of images, 8 attempt, 9 retention seconds,
--       10 result info JSON (seeds, infotexts, model...) or ""
-- Returns {"ok"} | {"stale"} when the job is no longer this worker's
local id, worker, state = ARGV[2], ARGV[3], ARGV[4]
local k = jkey(id)
local j = redis.call('HMGET', k, 'state', 'worker', 'attempts')
if j[1] ~= 'running' or j[2] ~= worker or j[3] ~= ARGV[8] then return {'stale'} end
local now = now_ms()
redis.call('HSET', k, 'images', ARGV[7], 'result_attempt', ARGV[8])
if ARGV[10] and ARGV[10] ~= '' then redis.call('HSET', k, 'info', ARGV[10]) end
if state == 'succeeded' then redis.call('HSET', k, 'progress', 1) end
finalize(id, state, ARGV[5], ARGV[6], now, tonumber(ARGV[9]))
return {'ok'}
