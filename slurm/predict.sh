#!/usr/bin/env bash
# Score a prepared split on SLURM: a job array (one task per shard, one GPU each)
# and a merge job that runs after every task succeeded (--dependency=afterok),
# ending in a validated contest zip.
#
#   bash slurm/predict.sh MODEL PREP OUT [NUM_SHARDS]      # submits both jobs, prints their ids
#
# MODEL: model folder or training run folder; PREP: prepared split (or folder of
# them); OUT: scores folder. Environment: SPLIT (default test), SUBMISSION
# (default submission/predictions.zip), BATCH_SIZE (default: the architecture's), RECSYS24_PYTHON
# (default ./.venv/bin/python), FEATURES (the split's `recsys24 features` folder, for a model that reads
# them: CGh-f), SBATCH_ARGS (extra sbatch options for both jobs; --wait blocks until the zip is written).
# A preempted task is requeued (--requeue) and scores only the pieces it had not
# finished. Run from the repository root; logs go to OUT/logs/.
#SBATCH --job-name=recsys24-predict
#SBATCH --ntasks=1
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --time=12:00:00
#SBATCH --requeue
#SBATCH --open-mode=append
set -euo pipefail
MODEL=${1:?usage: bash slurm/predict.sh MODEL PREP OUT [NUM_SHARDS]}
PREP=${2:?usage: bash slurm/predict.sh MODEL PREP OUT [NUM_SHARDS]}
OUT=${3:?usage: bash slurm/predict.sh MODEL PREP OUT [NUM_SHARDS]}
SHARDS=${4:-4}
SPLIT=${SPLIT:-test}
SUBMISSION=${SUBMISSION:-submission/predictions.zip}
cd "${SLURM_SUBMIT_DIR:-.}"
PY="${RECSYS24_PYTHON:-$PWD/.venv/bin/python}"

if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then          # one shard
  exec "$PY" -m recsys24 predict --model "$MODEL" --prepared "$PREP" --split "$SPLIT" --out "$OUT" \
    --shard-id "$SLURM_ARRAY_TASK_ID" --num-shards "$SLURM_ARRAY_TASK_COUNT" ${BATCH_SIZE:+--batch-size "$BATCH_SIZE"} \
    ${FEATURES:+--features "$FEATURES"}
elif [ "${RECSYS24_MERGE:-0}" = 1 ]; then           # after the array
  exec "$PY" -m recsys24 predict-merge --prepared "$PREP" --split "$SPLIT" --out "$OUT" \
    --make-submission --submission "$SUBMISSION"
fi

mkdir -p "$OUT/logs"
# shellcheck disable=SC2086
array=$(sbatch --parsable ${SBATCH_ARGS:-} --array="0-$((SHARDS - 1))" \
  --output="$OUT/logs/shard-%a.log" "$0" "$MODEL" "$PREP" "$OUT" "$SHARDS")
array=${array%%;*}
# shellcheck disable=SC2086
merge=$(sbatch --parsable ${SBATCH_ARGS:-} --gres=none --dependency="afterok:$array" --kill-on-invalid-dep=yes \
  --job-name=recsys24-merge --output="$OUT/logs/merge.log" --export=ALL,RECSYS24_MERGE=1 \
  "$0" "$MODEL" "$PREP" "$OUT" "$SHARDS")
echo "array $array merge ${merge%%;*}"
