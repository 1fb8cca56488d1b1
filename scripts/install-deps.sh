#!/usr/bin/env bash
# install-deps.sh - install every Debian package Tessera needs to build, run and test.
# Idempotent: packages already present are skipped quickly. Needs root (or sudo).
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config git ca-certificates
  libevent-dev libjansson-dev libhiredis-dev libinih-dev
  libpng-dev libturbojpeg0-dev libjpeg-dev libwebp-dev zlib1g-dev
  libssl-dev libcurl4-openssl-dev
  libdnnl-dev libopenblas-dev
  libcmocka-dev
  clang libclang-rt-14-dev
  redis-server python3 curl
  python3-pip unzip
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
else
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# redis-server is started by our scripts on a private socket; the distribution's
# service on port 6379 is not needed.
# CLIP's BPE vocabulary for the tokenizer and its tests (a file, not a package).
"$(dirname "$0")/fetch-clip-vocab.sh"
