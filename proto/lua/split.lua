-- split: the worker running an sd_upscale job (phase "split") upscaled its
-- image and stored the N tile inputs as job:<id>:tile:<i>:in:<attempt> (with
-- a TTL, so an attempt that dies here leaves nothing for long). In one step:
-- the inputs become job:<id>:tile:<i>:input (no TTL: the job owns them until
-- it is final), N tile records job:<id>:tile:<i> are made and their entries
-- added to the job's own stream (its pool and priority), the job's entry is
-- acknowledged, and the job stays running with phase "tiles", no worker and
-- no entry (so no lease: nothing can reclaim it while its tiles run).
-- ARGV: 1 prefix, 2 id, 3 worker, 4 attempt, 5 number of tiles
-- Returns {"ok", n} | {"stale"} | {"canceled"} | {"missing", tile}
local id, worker, attempt, n = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local k = jkey(id)
local j = redis.call('HMGET', k, 'state', 'worker', 'attempts', 'stream', 'pool', 'cancel', 'phase')
if j[1] ~= 'running' or j[2] ~= worker or j[3] ~= attempt then return {'stale'} end
if j[7] and j[7] ~= '' and j[7] ~= 'split' then return {'stale'} end
if j[6] == '1' then return {'canceled'} end
for i = 0, n - 1 do
  if redis.call('EXISTS', k .. ':tile:' .. i .. ':in:' .. attempt) == 0 then return {'missing', i} end
end
local now = now_ms()
drop_entry(id)
for i = 0, n - 1 do
  local tk = k .. ':tile:' .. i
  redis.call('RENAME', tk .. ':in:' .. attempt, tk .. ':input')
  redis.call('PERSIST', tk .. ':input')
  local e = redis.call('XADD', j[4], '*', 'job', id, 'tile', tostring(i))
  redis.call('DEL', tk, tk .. ':image')
  redis.call('HSET', tk, 'state', 'queued', 'attempts', '0', 'stream', j[4], 'entry', e)
end
local text = 'tiles 0/' .. n
redis.call('HSET', k, 'phase', 'tiles', 'tiles_total', n, 'tiles_done', 0, 'worker', '', 'entry', '',
  'progress', 0, 'step', 0, 'steps', n, 'progress_text', text, 'updated_at', now)
-- a wake token per tile (up to the list's cap) for the idle workers
local wk = P .. 'wake:' .. j[5]
local left = math.min(n, 1000)
while left > 0 do
  local batch = math.min(left, 100)
  local toks = {}
  for b = 1, batch do toks[b] = id end
  redis.call('RPUSH', wk, unpack(toks))
  left = left - batch
end
if redis.call('LLEN', wk) > 1000 then redis.call('LTRIM', wk, '-500', '-1') end
emit(id, 'progress', {progress = 0, step = 0, steps = n, text = text, phase = 'tiles'})
return {'ok', n}
