# Sourced by the other scripts: make ./.venv with everything recsys24 needs, once.
# torch goes in first and pinned, so that deepspeed does not pull a multi-GB CUDA build
# on CPU-only machines; on a GPU machine install the torch you want before running this.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
STAMP="$ROOT/.venv/.installed-$(sha1sum "$ROOT/pyproject.toml" | cut -c1-12)"
if [ ! -f "$STAMP" ]; then
  echo "setting up $ROOT/.venv (first run only)" >&2
  [ -x "$ROOT/.venv/bin/python" ] || "$PY" -m venv "$ROOT/.venv"
  "$ROOT/.venv/bin/python" -m pip install -q --upgrade pip >&2
  "$ROOT/.venv/bin/python" -c "import torch" 2>/dev/null || \
    "$ROOT/.venv/bin/python" -m pip install -q "torch==2.13.0" >&2
  "$ROOT/.venv/bin/python" -m pip install -q -e "$ROOT[dev]" >&2
  rm -f "$ROOT"/.venv/.installed-*
  touch "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
cd "$ROOT"
