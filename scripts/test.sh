#!/usr/bin/env bash
# test.sh - the README's second command: install, build, run every test
# (ctest: unit, engine and integration tests with real redis-server,
# tesserad and tessera-worker processes). CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd "${TESSERA_BUILD:-build}"
ctest --output-on-failure -j2 --timeout 900 "$@"
