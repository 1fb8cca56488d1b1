#!/usr/bin/env bash
# install-deps.sh - install every Debian package Tessera needs to build, run and test.
# Idempotent: packages already present are skipped quickly. Needs root (or sudo).
#
# Optional, only with --with-webuiapi (or TESSERA_WEBUIAPI=1): a Python virtual
# environment with the A1111 client library webuiapi from PyPI, for
# tests/integration/test_webuiapi.py (which is skipped without it).
set -euo pipefail
WITH_WEBUIAPI="${TESSERA_WEBUIAPI:-0}"
for a in "$@"; do
  case "$a" in
    --with-webuiapi) WITH_WEBUIAPI=1 ;;
    *) echo "install-deps: unknown argument $a (known: --with-webuiapi)" >&2; exit 2 ;;
  esac
done
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

# ---- optional: the webuiapi client library (test_webuiapi.py) ------------------------
# Not a build or run dependency: a separate virtual environment, never the system Python.
PYENV="${TESSERA_DATA:-$HOME/.cache/tessera}/pyenv"
if [ "$WITH_WEBUIAPI" = "1" ]; then
  if [ -x "$PYENV/bin/python" ] && "$PYENV/bin/python" -c "import webuiapi" 2>/dev/null; then
    echo "install-deps: webuiapi already in $PYENV"
  else
    echo "install-deps: optional step: creating a Python venv in $PYENV and installing webuiapi from PyPI into it"
    dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q "install ok installed" || {
      SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null || true
    }
    if python3 -m venv "$PYENV" && "$PYENV/bin/pip" install -q webuiapi; then
      echo "install-deps: webuiapi installed in $PYENV"
    else
      echo "install-deps: could not install webuiapi (offline?); test_webuiapi.py will be skipped" >&2
    fi
  fi
else
  echo "install-deps: skipping the optional webuiapi venv (for test_webuiapi.py: $0 --with-webuiapi)"
fi
