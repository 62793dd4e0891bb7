# Sourced by the pipeline scripts (demo.sh, contest.sh): step headings, and the recsys24 they run.
# With RECSYS24_PYTHON set (as slurm/*.sh read it), `recsys24` is that Python's; else ./.venv is made
# on first use (env.sh). Either way the script then runs in the repository root.
# bold step headings on a terminal only: a log file gets no escape codes
if [ -t 1 ]; then step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }; else step() { printf '\n== %s\n' "$*"; }; fi

if [ -n "${RECSYS24_PYTHON:-}" ]; then
  set -euo pipefail
  recsys24() { "$RECSYS24_PYTHON" -m recsys24 "$@"; }
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
else
  source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
  RECSYS24_PYTHON="$ROOT/.venv/bin/python"
fi
export RECSYS24_PYTHON
