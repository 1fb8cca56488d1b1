#!/usr/bin/env bash
# quickstart.sh - the README's first command: install, build, start a local
# farm (redis-server on a unix socket in run/, tesserad on 127.0.0.1:7860, one
# CPU worker), make a sample image, upscale it through the farm with an
# extras job, and write the PNG to out/extras.png. The farm stays up for more
# jobs; scripts/farm.sh stop stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
scripts/farm.sh start
mkdir -p out
build/tessera sample out/sample.png
build/tessera extras out/sample.png --resize 4 --upscaler Lanczos --out out/extras.png
echo "quickstart: wrote out/extras.png (from out/sample.png, Lanczos x4); the farm is still running"
echo "quickstart: try  build/tessera jobs   or   curl http://127.0.0.1:7860/v1/workers ; stop with scripts/farm.sh stop"
