#!/usr/bin/env bash
# farm.sh - run a one-machine farm from build/: redis-server on a unix socket
# in run/, tesserad on 127.0.0.1:7860 and one CPU worker.
#   scripts/farm.sh start | stop | status
# Logs and pid files are in run/. Settings come from config/*.ini, and any
# TESSERA_* environment variable overrides them (see each program's --help).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN=${TESSERA_RUN_DIR:-$ROOT/run}
BUILD_DIR=${TESSERA_BUILD:-$ROOT/build}
LISTEN=${TESSERA_LISTEN:-127.0.0.1:7860}
mkdir -p "$RUN"
SOCK="$RUN/redis.sock"

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start() {
  if ! running redis; then
    redis-server --port 0 --unixsocket "$SOCK" --unixsocketperm 700 --dir "$RUN" \
      --save 60 1 --appendonly yes --daemonize yes --pidfile "$RUN/redis.pid" --logfile "$RUN/redis.log"
    for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
  fi
  if ! running tesserad; then
    "$BUILD_DIR/tesserad" --config config/tesserad.ini --listen "$LISTEN" --redis "unix://$SOCK" \
      >>"$RUN/tesserad.log" 2>&1 &
    echo $! >"$RUN/tesserad.pid"
  fi
  if ! running worker; then
    "$BUILD_DIR/tessera-worker" --config config/tessera-worker.ini --redis "unix://$SOCK" --name "$(hostname)-cpu0" \
      --device cpu --models "${TESSERA_MODELS:-$ROOT/models}" >>"$RUN/worker.log" 2>&1 &
    echo $! >"$RUN/worker.pid"
  fi
  for _ in $(seq 100); do
    curl -sf "http://$LISTEN/readyz" >/dev/null 2>&1 && { echo "farm: up at http://$LISTEN (logs in $RUN)"; return 0; }
    sleep 0.1
  done
  echo "farm: tesserad did not become ready; see $RUN/tesserad.log" >&2
  return 1
}

stop() {
  for p in worker tesserad; do
    if running $p; then kill -TERM "$(cat "$RUN/$p.pid")"; fi
  done
  for p in worker tesserad; do
    for _ in $(seq 100); do running $p || break; sleep 0.1; done
    rm -f "$RUN/$p.pid"
  done
  if running redis; then redis-cli -s "$SOCK" shutdown >/dev/null 2>&1 || kill "$(cat "$RUN/redis.pid")"; fi
  echo "farm: stopped"
}

status() {
  for p in redis tesserad worker; do
    if running $p; then echo "$p: running (pid $(cat "$RUN/$p.pid"))"; else echo "$p: stopped"; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
