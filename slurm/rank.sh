#!/usr/bin/env bash
# Score a split's features with a ranker on SLURM: a job array (one task per shard of the
# features pieces, CPUs only) and a merge job that runs after every task succeeded
# (--dependency=afterok), ending in a validated contest zip.
#
#   bash slurm/rank.sh RANKER FEATURES OUT [NUM_SHARDS]      # submits both jobs, prints their ids
#
# RANKER: `recsys24 rank train` folder; FEATURES: `recsys24 features` folder of the split;
# OUT: scores folder (OUT/scores.parquet after the merge). Environment: SCORES (the ranker's
# stacked scores of this split, e.g. "cgh=A.parquet ranker=B.parquet"), SUBMISSION (default
# submission/predictions.zip), RECSYS24_PYTHON (default ./.venv/bin/python), SBATCH_ARGS
# (extra sbatch options for both jobs). A preempted task is requeued (--requeue) and scores
# only the pieces it had not finished. Run from the repository root; logs go to OUT/logs/.
#SBATCH --job-name=recsys24-rank
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=8
#SBATCH --time=4:00:00
#SBATCH --requeue
#SBATCH --open-mode=append
set -euo pipefail
usage="usage: bash slurm/rank.sh RANKER FEATURES OUT [NUM_SHARDS]"
RANKER=${1:?$usage}
FEATURES=${2:?$usage}
OUT=${3:?$usage}
SHARDS=${4:-4}
SUBMISSION=${SUBMISSION:-submission/predictions.zip}
cd "${SLURM_SUBMIT_DIR:-.}"
PY="${RECSYS24_PYTHON:-$PWD/.venv/bin/python}"
stacked=()
for spec in ${SCORES:-}; do stacked+=(--scores "$spec"); done

if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then          # one shard
  exec "$PY" -m recsys24 rank predict --model "$RANKER" --features "$FEATURES" --out "$OUT" "${stacked[@]}" \
    --shard-id "$SLURM_ARRAY_TASK_ID" --num-shards "$SLURM_ARRAY_TASK_COUNT"
elif [ "${RECSYS24_MERGE:-0}" = 1 ]; then           # after the array
  exec "$PY" -m recsys24 rank merge --features "$FEATURES" --out "$OUT" --make-submission --submission "$SUBMISSION"
fi

mkdir -p "$OUT/logs"
# shellcheck disable=SC2086
array=$(sbatch --parsable ${SBATCH_ARGS:-} --array="0-$((SHARDS - 1))" \
  --output="$OUT/logs/shard-%a.log" "$0" "$RANKER" "$FEATURES" "$OUT" "$SHARDS")
array=${array%%;*}
# shellcheck disable=SC2086
merge=$(sbatch --parsable ${SBATCH_ARGS:-} --dependency="afterok:$array" --kill-on-invalid-dep=yes \
  --job-name=recsys24-rank-merge --output="$OUT/logs/merge.log" --export=ALL,RECSYS24_MERGE=1 \
  "$0" "$RANKER" "$FEATURES" "$OUT" "$SHARDS")
echo "array $array merge ${merge%%;*}"
