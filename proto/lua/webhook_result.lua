-- webhook_result: record the outcome of one webhook delivery attempt taken
-- with webhook_take. Only the holder of the lease token may report; a late
-- report after the lease ran out (and another daemon took the delivery)
-- changes nothing.
--   delivered: the hash and the due entry are deleted.
--   retry:     attempts+1, last_status/last_error kept; due again after
--              min(max, base * 2^(attempts-1)) * (0.5 + 0.5 * jitter) ms, or,
--              once retry_window_ms has passed since created_at, given up:
--              failed_at set, the hash kept for a day, removed from due.
--   refused:   the target is not allowed (SSRF rules, bad URL): given up at once.
-- Counters in P stats: webhook|delivered, webhook|retried, webhook|failed,
-- webhook|refused.
-- ARGV: 1 prefix, 2 id, 3 lease, 4 outcome (delivered|retry|refused),
--       5 http status (0 for none), 6 error text, 7 base_backoff_ms,
--       8 max_backoff_ms, 9 retry_window_ms, 10 jitter in [0,1]
-- Returns {"delivered"} | {"retried", due_ms} | {"failed"} | {"refused"} | {"stale"}
local did, lease, outcome = ARGV[2], ARGV[3], ARGV[4]
local k = P .. 'webhook:' .. did
local due = P .. 'webhooks:due'
local stats = P .. 'stats'
local h = redis.call('HMGET', k, 'leased_until', 'attempts', 'created_at')
if not h[1] or h[1] ~= lease then return {'stale'} end
local now = now_ms()
if outcome == 'delivered' then
  redis.call('DEL', k)
  redis.call('ZREM', due, did)
  redis.call('HINCRBY', stats, 'webhook|delivered', 1)
  return {'delivered'}
end
local attempts = (tonumber(h[2]) or 0) + 1
redis.call('HSET', k, 'attempts', attempts, 'last_status', ARGV[5], 'last_error', ARGV[6],
  'last_attempt_at', now)
redis.call('HDEL', k, 'leased_until')
local function give_up(counter)
  redis.call('HSET', k, 'failed_at', now)
  redis.call('EXPIRE', k, 86400)
  redis.call('ZREM', due, did)
  redis.call('HINCRBY', stats, counter, 1)
end
if outcome == 'refused' then
  give_up('webhook|refused')
  return {'refused'}
end
local created = tonumber(h[3]) or now
if now - created > tonumber(ARGV[9]) then
  give_up('webhook|failed')
  return {'failed'}
end
local base, max = tonumber(ARGV[7]), tonumber(ARGV[8])
local delay = math.min(max, base * 2 ^ math.min(attempts - 1, 40))
local jitter = math.max(0, math.min(1, tonumber(ARGV[10]) or 1))
delay = math.floor(delay * (0.5 + 0.5 * jitter))
local at = now + delay
redis.call('ZADD', due, at, did)
redis.call('HINCRBY', stats, 'webhook|retried', 1)
return {'retried', at}
