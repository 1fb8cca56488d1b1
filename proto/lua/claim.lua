-- claim: a worker took a stream entry (XREADGROUP, or XAUTOCLAIM of an entry
-- whose worker stopped renewing its lease); decide whether it runs.
-- ARGV: 1 prefix, 2 job id, 3 stream, 4 entry id, 5 worker name, 6 retention seconds
-- Returns {"run", attempt, type, spec, phase} | {"skip", reason} | {"failed", message}
-- phase is "" except for sd_upscale jobs (docs/redis.md): "stitch" once the
-- last tile queued the job again (that claim is the job's next step, not a
-- lost lease, and keeps the attempt number); a tile's entry (field "tile")
-- goes to tile_claim instead.
local id, stream, entry, worker = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local retention = tonumber(ARGV[6])
local k = jkey(id)
local j = redis.call('HMGET', k, 'state', 'attempts', 'max_attempts', 'worker', 'entry', 'type',
  'spec', 'pool', 'created_at', 'started_at', 'phase')
if not j[1] then
  redis.call('XACK', stream, GROUP, entry)
  redis.call('XDEL', stream, entry)
  return {'skip', 'gone'}
end
if j[5] ~= entry then
  -- an old entry of a job that was released and queued again
  redis.call('XACK', stream, GROUP, entry)
  redis.call('XDEL', stream, entry)
  return {'skip', 'superseded'}
end
local state = j[1]
if state == 'succeeded' or state == 'failed' or state == 'canceled' then
  redis.call('XACK', stream, GROUP, entry)
  redis.call('XDEL', stream, entry)
  return {'skip', state}
end
local now = now_ms()
local attempts = tonumber(j[2]) or 0
local max_attempts = tonumber(j[3]) or 3
local phase = j[11] or ''
if state == 'running' and phase == 'stitch' and (not j[4] or j[4] == '') then
  -- sd_upscale: the last tile landed and queued the stitch
  redis.call('HSET', k, 'worker', worker, 'updated_at', now)
  emit(id, 'state', {state = 'running', worker = worker, attempt = attempts, phase = 'stitch'})
  return {'run', attempts, j[6], j[7], phase}
end
if state == 'running' then
  -- the previous worker lost its lease (died or stalled)
  redis.call('HINCRBY', P .. 'stats', 'lost_leases', 1)
  if attempts >= max_attempts then
    local msg = 'gave up after ' .. attempts .. ' attempts: worker ' .. (j[4] or '?')
      .. ' stopped renewing its lease'
    finalize(id, 'failed', 'worker_lost', msg, now, retention)
    return {'failed', msg}
  end
  emit(id, 'state', {state = 'queued', reason = 'lease expired on worker ' .. (j[4] or '?')})
end
attempts = attempts + 1
redis.call('HSET', k, 'state', 'running', 'attempts', attempts, 'worker', worker,
  'started_at', now, 'updated_at', now, 'progress', 0, 'progress_text', '')
if not j[10] or j[10] == '' then redis.call('HSET', k, 'first_started_at', now) end
if state == 'queued' then
  redis.call('ZREM', P .. 'queued:' .. j[8], id)
  observe(P .. 'hist:queue_wait', (now - tonumber(j[9])) / 1000.0, WAIT_BUCKETS)
end
index_state(id, state, 'running', now)
emit(id, 'state', {state = 'running', worker = worker, attempt = attempts})
return {'run', attempts, j[6], j[7], phase}
