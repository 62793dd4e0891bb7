#!/usr/bin/env bash
# The whole pipeline on built-in synthetic demo data, into ./demo_run (installs into ./.venv on first use).
source "$(dirname "$0")/env.sh"
RUN="${DEMO_DIR:-demo_run}"
set -x
recsys24 synth "$RUN/data" --preset demo --seed 0
for split in train validation test; do
  recsys24 prepare --data "$RUN/data" --split "$split" --out "$RUN/prepared/$split"
done
