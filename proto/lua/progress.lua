-- progress: a running job's worker reports how far it is.
-- ARGV: 1 prefix, 2 id, 3 worker, 4 progress 0..1, 5 step, 6 steps, 7 text
-- Returns {"ok", cancel requested 0|1} | {"lost"} when the job is no longer this worker's
local id, worker = ARGV[2], ARGV[3]
local k = jkey(id)
local j = redis.call('HMGET', k, 'state', 'worker', 'cancel')
if j[1] ~= 'running' or j[2] ~= worker then return {'lost'} end
local now = now_ms()
redis.call('HSET', k, 'progress', ARGV[4], 'step', ARGV[5], 'steps', ARGV[6],
  'progress_text', ARGV[7], 'updated_at', now)
emit(id, 'progress', {progress = tonumber(ARGV[4]), step = tonumber(ARGV[5]),
  steps = tonumber(ARGV[6]), text = ARGV[7]})
webhook_enqueue(id, 'progress', now)
return {'ok', tonumber(j[3]) or 0}
