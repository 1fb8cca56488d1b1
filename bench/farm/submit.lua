-- submit.lua - wrk script: POST a small extras job to /v1/jobs.
-- RATE (env, requests/s over all connections) turns on pacing through wrk's
-- delay(); without it wrk sends as fast as the daemon answers.
local body = os.getenv("JOB_BODY")
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
local rate = tonumber(os.getenv("RATE") or "0")
local conns = tonumber(os.getenv("CONNS") or "1")
local statuses = {}

function delay()
  if rate > 0 then return 1000 * conns / rate end
  return 0
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_s=%.2f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f errors=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
