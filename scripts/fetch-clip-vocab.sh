#!/usr/bin/env bash
# fetch-clip-vocab.sh - obtain CLIP's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz).
#
# The file is the standard vocabulary of SD 1.x/2.x text encoders. We take it
# from a pinned PyPI package that ships it (the open-clip-torch wheel), never
# from a model hub and never at run time: `pip download --no-deps` fetches only
# the wheel (Debian's pip refuses system installs, but download works), and
# unzip extracts the one file. Its SHA-256 is pinned below.
#
# Destination: $1, else $TESSERA_CLIP_VOCAB, else
# ${TESSERA_DATA:-$HOME/.cache/tessera}/bpe_simple_vocab_16e6.txt.gz
# Idempotent: an existing file with the right hash is kept.
set -euo pipefail
PKG_VERSION=2.24.0
SHA256=924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a
DEST="${1:-${TESSERA_CLIP_VOCAB:-${TESSERA_DATA:-$HOME/.cache/tessera}/bpe_simple_vocab_16e6.txt.gz}}"

check() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]; }

if check "$DEST"; then
  echo "fetch-clip-vocab: $DEST present"
  exit 0
fi
PIP=""
for c in pip3 pip "python3 -m pip"; do
  if $c --version >/dev/null 2>&1; then PIP="$c"; break; fi
done
[ -n "$PIP" ] || { echo "fetch-clip-vocab: pip not found (install python3-pip)" >&2; exit 1; }
command -v unzip >/dev/null || { echo "fetch-clip-vocab: unzip not found" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
echo "fetch-clip-vocab: downloading open-clip-torch==$PKG_VERSION from PyPI"
$PIP download --quiet --no-deps --only-binary=:all: --dest "$TMP" "open-clip-torch==$PKG_VERSION"
WHL=$(ls "$TMP"/open_clip_torch-*.whl)
unzip -q -o "$WHL" open_clip/bpe_simple_vocab_16e6.txt.gz -d "$TMP/x"
if ! check "$TMP/x/open_clip/bpe_simple_vocab_16e6.txt.gz"; then
  echo "fetch-clip-vocab: SHA-256 mismatch for the vocabulary in $WHL" >&2
  exit 1
fi
mkdir -p "$(dirname "$DEST")"
install -m 0644 "$TMP/x/open_clip/bpe_simple_vocab_16e6.txt.gz" "$DEST.tmp"
mv "$DEST.tmp" "$DEST"
echo "fetch-clip-vocab: wrote $DEST"
