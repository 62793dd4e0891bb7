#!/usr/bin/env bash
# Run the test suite (installs into ./.venv on first use). Extra args go to pytest.
source "$(dirname "$0")/env.sh"
exec python -m pytest "$@"
