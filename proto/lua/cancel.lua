-- cancel: a queued job is canceled at once and never runs; a running job is
-- flagged and its worker stops at its next progress check. An sd_upscale job
-- whose tiles are out (phase "tiles", or "stitch" not yet claimed) has no
-- worker of its own: it is canceled at once, its queued tiles dropped, and
-- the workers rendering tiles find them gone at their next check.
-- ARGV: 1 prefix, 2 id, 3 retention seconds
-- Returns {"canceled"} | {"requested"} | {"final", state} | {"missing"}
local id = ARGV[2]
local k = jkey(id)
local j = redis.call('HMGET', k, 'state', 'phase', 'worker')
local state = j[1]
if not state then return {'missing'} end
if state == 'queued' then
  finalize(id, 'canceled', 'canceled', 'canceled before it ran', now_ms(), tonumber(ARGV[3]))
  return {'canceled'}
end
if state == 'running' then
  if j[2] == 'tiles' or (j[2] == 'stitch' and (not j[3] or j[3] == '')) then
    finalize(id, 'canceled', 'canceled', 'canceled while its tiles were rendering', now_ms(), tonumber(ARGV[3]))
    return {'canceled'}
  end
  if redis.call('HGET', k, 'cancel') ~= '1' then
    redis.call('HSET', k, 'cancel', 1)
    emit(id, 'cancel_requested', {state = 'running'})
  end
  return {'requested'}
end
return {'final', state}
