-- webhook_take: a daemon's dispatcher takes up to n due webhook deliveries.
-- Each one taken is re-scored to now + lease_ms in P webhooks:due and gets a
-- fresh lease token (the new score) in its hash, so no other daemon takes it
-- while this attempt runs; if this daemon dies, the delivery is due again when
-- the lease runs out. webhook_result only accepts the holder of the token.
-- Ids whose hash is gone (expired or deleted by hand) are dropped.
-- ARGV: 1 prefix, 2 n, 3 lease_ms
-- Returns {id, job, event, url, secret, body, attempts, created_at, lease, ...}
-- (9 fields per delivery)
local n, lease_ms = tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local due = P .. 'webhooks:due'
local out = {}
if n < 1 then return out end
local ids = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, n)
local lease = string.format('%d', now + lease_ms)
for _, did in ipairs(ids) do
  local k = P .. 'webhook:' .. did
  local h = redis.call('HMGET', k, 'job', 'event', 'url', 'secret', 'body', 'attempts',
    'created_at', 'failed_at')
  if not h[3] or (h[8] and h[8] ~= '') then
    redis.call('ZREM', due, did)
  else
    redis.call('ZADD', due, lease, did)
    redis.call('HSET', k, 'leased_until', lease)
    out[#out + 1] = did
    for i = 1, 7 do out[#out + 1] = h[i] or '' end
    out[#out + 1] = lease
  end
end
return out
