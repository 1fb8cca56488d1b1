-- cancel: a queued job is canceled at once and never runs; a running job is
-- flagged and its worker stops at its next progress check.
-- ARGV: 1 prefix, 2 id, 3 retention seconds
-- Returns {"canceled"} | {"requested"} | {"final", state} | {"missing"}
local id = ARGV[2]
local k = jkey(id)
local state = redis.call('HGET', k, 'state')
if not state then return {'missing'} end
if state == 'queued' then
  finalize(id, 'canceled', 'canceled', 'canceled before it ran', now_ms(), tonumber(ARGV[3]))
  return {'canceled'}
end
if state == 'running' then
  if redis.call('HGET', k, 'cancel') ~= '1' then
    redis.call('HSET', k, 'cancel', 1)
    emit(id, 'cancel_requested', {state = 'running'})
  end
  return {'requested'}
end
return {'final', state}
