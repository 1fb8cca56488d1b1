#!/usr/bin/env bash
# bench_submit.sh - job submission throughput and latency of tesserad, next to
# the raw XADD rate of the same redis-server measured in the same run.
#
#   bench/farm/bench_submit.sh [seconds]     (default 10 s per phase)
#
# Phases: (1) redis-benchmark XADD on the unix socket (the ceiling: one XADD is
# the least a submission costs); (2) wrk at full speed, 32 connections, 2
# threads (throughput); (3) wrk paced at 1,000 req/s (latency at a realistic
# load); daemon RSS idle and after load. No workers run: jobs stay queued.
# Results go to docs/PERF.md by hand, with this command.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
BUILD=${TESSERA_BUILD:-build}
T=$(mktemp -d)
trap 'kill $(cat $T/d.pid) 2>/dev/null; redis-cli -s $T/r.sock shutdown nosave >/dev/null 2>&1; rm -rf $T' EXIT
redis-server --port 0 --unixsocket $T/r.sock --save '' --appendonly no --daemonize yes --logfile $T/redis.log --dir $T
for _ in $(seq 100); do [ -S $T/r.sock ] && break; sleep 0.05; done
PORT=$((20000 + RANDOM % 20000))
"$BUILD/tesserad" --listen 127.0.0.1:$PORT --redis unix://$T/r.sock --max-queue-depth 0 --webhooks false \
  --log-level warn >$T/d.log 2>&1 &
echo $! >$T/d.pid
for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.05; done
rss() { awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$(cat $T/d.pid)/status; }

echo "== redis-benchmark XADD (unix socket, 50 clients, pipeline 1)"
redis-benchmark -s $T/r.sock -n 200000 -c 50 -q XADD bench:stream '*' job 0123456789ab0123456789ab | tail -1
XADD_RPS=$(redis-benchmark -s $T/r.sock -n 200000 -c 50 -q --csv XADD bench:stream '*' job 0123456789ab0123456789ab \
  | tail -1 | cut -d, -f2 | tr -d '"')
echo "XADD rps: $XADD_RPS"
redis-cli -s $T/r.sock del bench:stream >/dev/null

IMG=$("$BUILD/tessera" sample $T/s.png --width 8 --height 8 >/dev/null && base64 -w0 $T/s.png)
export JOB_BODY="{\"type\":\"extras\",\"resize\":2,\"upscaler\":\"Lanczos\",\"image\":\"$IMG\"}"
echo "== daemon RSS idle: $(rss)"
echo "== wrk full speed: 2 threads, 32 connections, ${SECS}s"
CONNS=32 RATE=0 wrk -t2 -c32 -d${SECS}s -s bench/farm/submit.lua http://127.0.0.1:$PORT/v1/jobs | grep -E "RESULT|Non-2xx"
FULL=$(CONNS=32 RATE=0 wrk -t2 -c32 -d${SECS}s -s bench/farm/submit.lua http://127.0.0.1:$PORT/v1/jobs | grep RESULT)
echo "$FULL"
echo "== daemon RSS after full-speed load: $(rss)"
echo "== wrk paced at 1000 req/s: 2 threads, 20 connections, ${SECS}s"
CONNS=20 RATE=1000 wrk -t2 -c20 -d${SECS}s -s bench/farm/submit.lua http://127.0.0.1:$PORT/v1/jobs | grep -E "RESULT|Non-2xx"
echo "== daemon RSS after paced load: $(rss)"
FULL_RPS=$(echo "$FULL" | sed -E 's/.*rps=([0-9.]+).*/\1/')
python3 -c "print('submission rate / raw XADD rate = %.1f%%' % (100.0 * $FULL_RPS / $XADD_RPS))"
echo "jobs queued in Redis: $(redis-cli -s $T/r.sock zcard tessera:queued:default)"
