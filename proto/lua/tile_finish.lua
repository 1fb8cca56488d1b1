-- tile_finish: a worker finished a tile of an sd_upscale job.
--   succeeded: its PNG was SET at job:<id>:tile:<i>:out:<attempt> (with a
--     TTL); it becomes job:<id>:tile:<i>:image (no TTL: the job owns it), the
--     entry is acknowledged, tiles_done goes up by one and the job's progress
--     follows (progress = done/total, step/steps, text "tiles d/n", a progress
--     event and webhook). The last tile queues the job again, phase "stitch",
--     as a fresh entry of its stream: any worker claims it (claim.lua) and
--     combines the tiles.
--   failed: the job fails with the tile's error (a tile that cannot render
--     makes the upscale impossible).
--   canceled: the worker stopped on the job's cancel flag; cancel.lua ends a
--     job in phase "tiles" at once, so this only meets a finished job (stale).
-- ARGV: 1 prefix, 2 job id, 3 tile index, 4 worker, 5 attempt, 6 state, 7 error code,
--       8 error message, 9 retention seconds, 10 result info JSON or ""
-- Returns {"ok", done, total} | {"stale"} | {"missing"}
local id, tile, worker, attempt, state = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local k = jkey(id)
local tk = k .. ':tile:' .. tile
local t = redis.call('HMGET', tk, 'state', 'worker', 'attempts', 'stream', 'entry')
if t[1] ~= 'running' or t[2] ~= worker or t[3] ~= attempt then return {'stale'} end
local j = redis.call('HMGET', k, 'state', 'phase', 'tiles_total', 'stream', 'pool')
if j[1] ~= 'running' or j[2] ~= 'tiles' then return {'stale'} end
local now = now_ms()
if state == 'failed' then
  finalize(id, 'failed', ARGV[7], 'tile ' .. tile .. ': ' .. ARGV[8], now, tonumber(ARGV[9]))
  return {'ok', 0, tonumber(j[3])}
end
if state ~= 'succeeded' then return {'stale'} end
local out = tk .. ':out:' .. attempt
if redis.call('EXISTS', out) == 0 then return {'missing'} end
redis.call('RENAME', out, tk .. ':image')
redis.call('PERSIST', tk .. ':image')
redis.call('XACK', t[4], GROUP, t[5])
redis.call('XDEL', t[4], t[5])
redis.call('HSET', tk, 'state', 'done', 'entry', '', 'finished_at', now, 'progress', 1)
if ARGV[10] and ARGV[10] ~= '' then redis.call('HSET', tk, 'info', ARGV[10]) end
local done = redis.call('HINCRBY', k, 'tiles_done', 1)
local total = tonumber(j[3])
local text = 'tiles ' .. done .. '/' .. total
redis.call('HSET', k, 'progress', tostring(done / total), 'step', done, 'steps', total,
  'progress_text', text, 'updated_at', now)
emit(id, 'tile', {tile = tonumber(tile), state = 'done', worker = worker, attempt = tonumber(attempt)})
emit(id, 'progress', {progress = done / total, step = done, steps = total, text = text})
webhook_enqueue(id, 'progress', now)
if done >= total then
  local e = redis.call('XADD', j[4], '*', 'job', id)
  redis.call('HSET', k, 'phase', 'stitch', 'entry', e, 'worker', '')
  redis.call('RPUSH', P .. 'wake:' .. j[5], id)
  emit(id, 'phase', {phase = 'stitch'})
end
return {'ok', done, total}
