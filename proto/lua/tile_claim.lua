-- tile_claim: a worker took a tile entry of an sd_upscale job (fields job,
-- tile) by XREADGROUP, or by XAUTOCLAIM after the tile's worker stopped
-- renewing its lease; decide whether it runs. Tiles are retried alone: each
-- tile counts its own attempts against the job's max_attempts, and a tile
-- that runs out fails the whole job with the reason.
-- ARGV: 1 prefix, 2 job id, 3 tile index, 4 stream, 5 entry id, 6 worker name, 7 retention seconds
-- Returns {"run", attempt, type, spec} | {"skip", reason} | {"failed", message}
local id, tile, stream, entry, worker = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local k = jkey(id)
local tk = k .. ':tile:' .. tile
local function skip(why)
  redis.call('XACK', stream, GROUP, entry)
  redis.call('XDEL', stream, entry)
  return {'skip', why}
end
local j = redis.call('HMGET', k, 'state', 'phase', 'cancel', 'max_attempts', 'type', 'spec')
if not j[1] then return skip('gone') end
if j[1] ~= 'running' or j[2] ~= 'tiles' then return skip('job ' .. j[1]) end
if j[3] == '1' then return skip('canceled') end
local t = redis.call('HMGET', tk, 'state', 'attempts', 'worker', 'entry')
if not t[1] or t[4] ~= entry then return skip('superseded') end
if t[1] == 'done' then return skip('done') end
local now = now_ms()
local attempts = tonumber(t[2]) or 0
local max_attempts = tonumber(j[4]) or 3
if t[1] == 'running' then
  -- the tile's worker lost its lease (died or stalled)
  redis.call('HINCRBY', P .. 'stats', 'lost_leases', 1)
  if attempts >= max_attempts then
    local msg = 'tile ' .. tile .. ' gave up after ' .. attempts .. ' attempts: worker ' .. (t[3] or '?')
      .. ' stopped renewing its lease'
    finalize(id, 'failed', 'worker_lost', msg, now, tonumber(ARGV[7]))
    return {'failed', msg}
  end
  emit(id, 'tile', {tile = tonumber(tile), state = 'queued', reason = 'lease expired on worker ' .. (t[3] or '?')})
end
attempts = attempts + 1
redis.call('HSET', tk, 'state', 'running', 'attempts', attempts, 'worker', worker, 'started_at', now)
emit(id, 'tile', {tile = tonumber(tile), state = 'running', worker = worker, attempt = attempts})
return {'run', attempts, j[5], j[6]}
