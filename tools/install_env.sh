#!/usr/bin/env bash
# Installs the pinned infopro_mm environment into ./.venv (see docs/install.md).
#
# The versions are those of requirements/constraints.txt; the ranges and
# extras are requirements/*.txt (read by setup.py too).
# Order matters: torch first, then mmcv built against that torch, then
# infopro_mm itself with every extra ([all,tests]). Safe to run again: every
# step is a no-op when its pinned version is already installed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3.11}"
PINS="$ROOT/requirements/constraints.txt"
# Wheels this script builds itself (mmcv), kept per torch version because
# pip's own wheel cache does not key on the torch a wheel was built against.
WHEELHOUSE="$ROOT/.cache/wheels"

pin() { grep -E "^$1==" "$PINS" | head -n1; }
log() { printf '[install] %s\n' "$*"; }

command -v "$PY" >/dev/null || PY=python3
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
# Absolute from here on: the mmcv build below runs in another directory.
VENV="$(cd "$VENV" && pwd)"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

log "torch and torchvision: $(pin torch) $(pin torchvision)"
"${PIP[@]}" install -q "$(pin setuptools)" wheel "$(pin torch)" "$(pin torchvision)" "$(pin numpy)"

TORCH_VERSION="$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])')"
MMCV_PIN="$(pin mmcv)"
MMCV_VERSION="${MMCV_PIN#mmcv==}"

mmcv_ok() {
  "$VENV/bin/python" - <<PY 2>/dev/null
import importlib.metadata as m, sys
sys.exit(0 if m.version('mmcv') == '$MMCV_VERSION' else 1)
PY
}

if mmcv_ok; then
  log "mmcv $MMCV_VERSION already installed"
else
  # 1) a prebuilt wheel from PIP_FIND_LINKS (e.g. ../shared/wheels) or from our
  #    own wheelhouse for this torch version; 2) otherwise build from source.
  OWN="$WHEELHOUSE/torch-$TORCH_VERSION"
  LINKS=(--find-links "$OWN")
  [ -n "${PIP_FIND_LINKS:-}" ] && LINKS+=(--find-links "$PIP_FIND_LINKS")
  mkdir -p "$OWN"
  if "${PIP[@]}" install -q --no-index --no-deps "${LINKS[@]}" "$MMCV_PIN" 2>/dev/null; then
    log "mmcv $MMCV_VERSION installed from a prebuilt wheel"
  else
    log "no prebuilt mmcv $MMCV_VERSION wheel for torch $TORCH_VERSION found:"
    log "building it from source with compiled ops (9-16 min on 2 idle cores, up to ~35 min when busy)"
    SRC="$(mktemp -d)"
    trap 'rm -rf "$SRC"' EXIT
    "${PIP[@]}" download -q --no-binary :all: --no-deps --no-build-isolation -d "$SRC" "$MMCV_PIN"
    tar -xzf "$SRC"/mmcv-"$MMCV_VERSION".tar.gz -C "$SRC"
    # torch >= 2.10 headers need C++20; mmcv 2.1.0's setup.py hard-codes C++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$SRC/mmcv-$MMCV_VERSION/setup.py"
    grep -q -- '-std=c++20' "$SRC/mmcv-$MMCV_VERSION/setup.py" || { log "could not patch mmcv's setup.py"; exit 1; }
    (cd "$SRC/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      "${PIP[@]}" wheel -q --no-build-isolation --no-cache-dir --no-deps -w "$OWN" .)
    "${PIP[@]}" install -q --no-index --no-deps --find-links "$OWN" "$MMCV_PIN"
    log "mmcv $MMCV_VERSION built and installed (wheel kept in $OWN)"
  fi
fi

log "infopro_mm[all,tests] (editable) and its requirements, pinned by $(basename "$PINS")"
"${PIP[@]}" install -q -c "$PINS" --no-build-isolation -e "$ROOT[all,tests]"

log "verifying the stack"
"$VENV/bin/python" - <<'PY'
import importlib
import sys

checks = [
    ('mmcv compiled ops (nms, RoIAlign)', 'from mmcv.ops import nms, RoIAlign'),
    ('mmsegmentation models', 'import mmseg.models'),
    ('mmdetection models', 'import mmdet.models'),
    ('mmpretrain models', 'import mmpretrain.models'),
    ('infopro_mm', 'import infopro_mm'),
]
for name, stmt in checks:
    try:
        exec(stmt, {})
    except Exception as exc:  # report which piece of the stack is broken
        sys.exit(f'[install] BROKEN: {name}: `{stmt}` failed: {type(exc).__name__}: {exc}')
    print(f'[install] ok: {name}')
PY
