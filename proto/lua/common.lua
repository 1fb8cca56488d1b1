-- common.lua: helpers prepended to every Tessera script (see proto/embed_lua.cmake).
-- ARGV[1] is always the key prefix (default "tessera:"); docs/redis.md lists the keys.
-- Only what a script uses is prepended: the lines above the first "-- @part"
-- always, then each "-- @part NAME" block whose NAME (the local it defines)
-- occurs as a word in the script or in another block taken (defining a dozen
-- closures and tables on every call is a measurable cost of each script).
-- Keep a block's definition after the blocks it uses.
-- Timestamps are Redis TIME in milliseconds, so several daemons and workers
-- with skewed clocks still agree.
local P = ARGV[1]
local GROUP = 'workers'

-- @part now_ms
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- @part jkey
local function jkey(id) return P .. 'job:' .. id end

-- @part emit
-- Append an event to the job's event stream and announce it on the pub/sub
-- channel the daemons' SSE endpoints listen to. data is a table.
local function emit(id, kind, data)
  data.job = id
  data.event = kind
  local payload = cjson.encode(data)
  local ek = jkey(id) .. ':events'
  local sid = redis.call('XADD', ek, 'MAXLEN', '~', 1000, '*', 'event', kind, 'data', payload)
  redis.call('PUBLISH', P .. 'events', sid .. ' ' .. id .. ' ' .. kind .. ' ' .. payload)
  return sid
end

-- @part observe
-- Prometheus-style histogram kept in a hash: one field per bucket (not
-- cumulative; the daemon accumulates when it formats), plus sum and count.
local function observe(hkey, seconds, buckets)
  local placed = false
  for _, le in ipairs(buckets) do
    if seconds <= le then
      redis.call('HINCRBY', hkey, tostring(le), 1)
      placed = true
      break
    end
  end
  if not placed then redis.call('HINCRBY', hkey, '+Inf', 1) end
  redis.call('HINCRBYFLOAT', hkey, 'sum', seconds)
  redis.call('HINCRBY', hkey, 'count', 1)
end

-- @part WAIT_BUCKETS
local WAIT_BUCKETS = {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600}
-- @part RUN_BUCKETS
local RUN_BUCKETS = {0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

-- @part json_str
local function json_str(s)
  if s == nil or s == false or s == '' then return 'null' end
  return cjson.encode(s)
end

-- @part json_num
local function json_num(s)
  if s == nil or s == false or s == '' then return 'null' end
  return tostring(tonumber(s))
end

-- @part job_summary
-- The job summary used by webhook bodies (the same fields GET /v1/jobs/{id} shows).
local function job_summary(id)
  local h = redis.call('HGETALL', jkey(id))
  local j = {}
  for i = 1, #h, 2 do j[h[i]] = h[i + 1] end
  local imgs = {}
  local n = tonumber(j.images or '0') or 0
  for i = 0, n - 1 do
    imgs[#imgs + 1] = '"/v1/jobs/' .. id .. '/images/' .. i .. '"'
  end
  local err = 'null'
  if j.error_code and j.error_code ~= '' then
    err = '{"code":' .. json_str(j.error_code) .. ',"message":' .. json_str(j.error) .. '}'
  end
  local meta = 'null'
  if j.metadata and j.metadata ~= '' then meta = j.metadata end
  return '{"id":' .. json_str(id) .. ',"type":' .. json_str(j.type) .. ',"state":' .. json_str(j.state)
    .. ',"pool":' .. json_str(j.pool) .. ',"attempts":' .. json_num(j.attempts)
    .. ',"worker":' .. json_str(j.worker) .. ',"progress":' .. json_num(j.progress)
    .. ',"created_at":' .. json_num(j.created_at) .. ',"started_at":' .. json_num(j.started_at)
    .. ',"finished_at":' .. json_num(j.finished_at) .. ',"error":' .. err
    .. ',"images":[' .. table.concat(imgs, ',') .. '],"metadata":' .. meta .. '}'
end

-- @part webhook_enqueue
-- Queue a webhook delivery for an event when the job asked for it. The body
-- is fixed now, so every retry sends the same bytes (with a fresh signature).
local function webhook_enqueue(id, event, now)
  local wh = redis.call('HGET', jkey(id), 'webhook')
  if not wh or wh == '' then return end
  local w = cjson.decode(wh)
  local wanted = false
  for _, e in ipairs(w.events or {}) do
    if e == event then wanted = true end
  end
  if not wanted then return end
  local seq = redis.call('HINCRBY', jkey(id), 'webhook_seq', 1)
  local did = id .. '-' .. seq
  local body = '{"delivery":' .. json_str(did) .. ',"event":' .. json_str(event)
    .. ',"sent_at":null,"job":' .. job_summary(id) .. '}'
  redis.call('HSET', P .. 'webhook:' .. did, 'job', id, 'event', event, 'url', w.url,
    'secret', w.secret or '', 'body', body, 'attempts', 0, 'created_at', now)
  redis.call('ZADD', P .. 'webhooks:due', now, did)
end

-- @part index_state
-- Move a job between the per-state index sets.
local function index_state(id, from, to, score)
  if from then redis.call('ZREM', P .. 'jobs:state:' .. from, id) end
  if to then redis.call('ZADD', P .. 'jobs:state:' .. to, score, id) end
end

-- @part drop_entry
-- Remove the job's stream entry: acknowledged and deleted, so XLEN and the
-- group's pending list only ever hold live work.
local function drop_entry(id)
  local s = redis.call('HMGET', jkey(id), 'stream', 'entry')
  if s[1] and s[2] and s[2] ~= '' then
    redis.call('XACK', s[1], GROUP, s[2])
    redis.call('XDEL', s[1], s[2])
  end
end

-- @part expire_job
-- Everything a job owns expires together once the job is final.
local function expire_job(id, retention)
  local k = jkey(id)
  redis.call('EXPIRE', k, retention)
  redis.call('EXPIRE', k .. ':events', retention)
  redis.call('EXPIRE', k .. ':input', retention)
  local attempt = redis.call('HGET', k, 'result_attempt')
  local n = tonumber(redis.call('HGET', k, 'images') or '0') or 0
  if attempt then
    for i = 0, n - 1 do redis.call('EXPIRE', k .. ':image:' .. attempt .. ':' .. i, retention) end
  end
  -- drop index entries older than the retention window
  local cutoff = now_ms() - retention * 1000
  redis.call('ZREMRANGEBYSCORE', P .. 'jobs', '-inf', cutoff)
  for _, st in ipairs({'succeeded', 'failed', 'canceled'}) do
    redis.call('ZREMRANGEBYSCORE', P .. 'jobs:state:' .. st, '-inf', cutoff)
  end
end

-- @part drop_tiles
-- An sd_upscale job's tile tasks (split.lua made n of them): their stream
-- entries acknowledged and deleted (a worker still rendering one finds it
-- gone at its next renew/progress and stops), their records, inputs and
-- rendered images deleted.
local function drop_tiles(id, n)
  local k = jkey(id)
  for i = 0, n - 1 do
    local tk = k .. ':tile:' .. i
    local t = redis.call('HMGET', tk, 'stream', 'entry')
    if t[1] and t[2] and t[2] ~= '' then
      redis.call('XACK', t[1], GROUP, t[2])
      redis.call('XDEL', t[1], t[2])
    end
    redis.call('DEL', tk, tk .. ':input', tk .. ':image')
  end
end

-- @part finalize
-- Final state change shared by finish, cancel and the give-up paths of claim
-- and of the tile scripts.
local function finalize(id, state, code, msg, now, retention)
  local k = jkey(id)
  local j = redis.call('HMGET', k, 'state', 'type', 'started_at', 'pool', 'tiles_total')
  local from = j[1]
  redis.call('HSET', k, 'state', state, 'finished_at', now, 'updated_at', now,
    'error_code', code or '', 'error', msg or '')
  drop_entry(id)
  if j[5] and j[5] ~= '' then drop_tiles(id, tonumber(j[5])) end
  if from == 'queued' then redis.call('ZREM', P .. 'queued:' .. j[4], id) end
  index_state(id, from, state, now)
  redis.call('HINCRBY', P .. 'stats', 'finished|' .. j[2] .. '|' .. state, 1)
  if j[3] and j[3] ~= '' then
    observe(P .. 'hist:run:' .. j[2], (now - tonumber(j[3])) / 1000.0, RUN_BUCKETS)
  end
  local ev = {state = state}
  if code and code ~= '' then ev.error = {code = code, message = msg} end
  emit(id, 'state', ev)
  webhook_enqueue(id, state, now)
  expire_job(id, retention)
end
