#!/usr/bin/env bash
# The whole contest entry on the official EB-NeRD downloads, ending in a validated zip:
# layout, prepare, features, a features ranker, CGh-f, its scores, a stacked ranker, the zip.
#
#   bash scripts/contest.sh DATA TESTSET OUT
#
# DATA: the unpacked ebnerd_large/ (or ebnerd_small/, ebnerd_demo/); TESTSET: the unpacked ebnerd_testset/;
# OUT: everything the entry writes; the zip is OUT/submission/predictions.zip. Rerun with the same
# arguments to resume: a finished step is skipped, a killed one continues where it stopped.
# What each step costs on the full data (ebnerd_large), and where each figure comes from: docs/recipe.md.
#
# Environment:
#   CGHF_CONFIG      the CGh-f training config (default configs/tiny/cgh_f.yaml: a random tiny mT5, minutes
#                    on a CPU; for the full data configs/cgh_f.yaml, see docs/recipe.md)
#   CGHF_OVERRIDES   more section.key=value overrides of it, space-separated (e.g. "train.steps=20000")
#   RANK_ARGS        more options of both `rank train` runs (e.g. "--sample 0.2 --rounds 1000")
#   SLURM=1          train and score CGh-f through sbatch slurm/train.sh and slurm/predict.sh (GPU nodes;
#                    the script waits for the jobs); SHARDS: predict shards per split (default 4);
#                    TRAIN_SBATCH_ARGS: sbatch options of the training job (e.g. "--nodes=2");
#                    SBATCH_ARGS: of the predict jobs (as slurm/predict.sh reads it)
#   RECSYS24_PYTHON  the Python that has recsys24 (default: ./.venv, made on first use)
set -euo pipefail
usage="usage: bash scripts/contest.sh DATA TESTSET OUT"
DATA=$(realpath "${1:?$usage}")
TESTSET=$(realpath "${2:?$usage}")
OUT=$(realpath -m "${3:?$usage}")
source "$(dirname "$0")/lib.sh"  # step, recsys24; now in the repository root
CGHF_CONFIG=${CGHF_CONFIG:-configs/tiny/cgh_f.yaml}
read -r -a cghf_overrides <<< "${CGHF_OVERRIDES:-}"
read -r -a rank_args <<< "${RANK_ARGS:-}"
RAW="$OUT/data" PREP="$OUT/prepared" FEAT="$OUT/features" RANKERS="$OUT/rankers" RUN="$OUT/runs/cgh_f"
CGHF="$OUT/scores/cgh_f" ZIP="$OUT/submission/predictions.zip"
splits=(train validation test)
# The commands of steps 2, 3 and 6 resume by themselves; a finished ranker, run or zip is skipped here.
done_already() { [ -f "$1" ] && echo "$1: already there, step skipped"; }

# Full data: seconds (links, and one articles.parquet of 125,541 rows).
step "1. the two downloads as one raw folder: $RAW"
recsys24 layout --data "$DATA" --testset "$TESTSET" --out "$RAW"

# Full data: about 3.5 minutes for the three splits, under 3 GB.
step "2. validate and prepare each split (skipped when up to date)"
for split in "${splits[@]}"; do
  recsys24 prepare --data "$RAW" --split "$split" --out "$PREP/$split"
done

# Full data: about 22 minutes for the three splits, at most 6.5 GB; about 36 GB of parquet.
step "3. contest features of every split (each reads every split's history file under $RAW)"
for split in "${splits[@]}"; do
  recsys24 features --data "$RAW" --split "$split" --out "$FEAT/$split"
done

# Full data: with RANK_ARGS="--sample 0.2 --rounds 60 --param learning_rate=0.1" about 6 minutes and 3.9 GB,
# then about 9 minutes to score each split; every candidate: 14.8 GB and about 28 s a round. `--memory`
# refuses a run estimated above what the machine has, naming the sample that fits.
step "4. the features ranker: LightGBM on train, early-stopped on validation (20% of its users kept out)"
done_already "$RANKERS/features/ranker.json" || recsys24 rank train --features "$FEAT/train" \
  --valid-features "$FEAT/validation" --holdout 0.2 "${rank_args[@]}" --out "$RANKERS/features"
for split in validation test; do
  done_already "$RANKERS/features/scores/$split/scores.parquet" || recsys24 rank predict --model "$RANKERS/features" \
    --features "$FEAT/$split" --out "$RANKERS/features/scores/$split"
done

# Full data: GPU hours, your budget (about 1.5 H100-hours per 640k pairs, projected; one epoch is 12.9M pairs);
# SLURM=1 runs it as a requeueing DeepSpeed job.
step "5. CGh-f: the CGh whose candidate position also reads the pair's features ($CGHF_CONFIG)"
train_args=("$CGHF_CONFIG" --output "$RUN" train.train_data="$PREP/train" train.valid_data="$PREP/validation"
            train.train_features="$FEAT/train" train.valid_features="$FEAT/validation" "${cghf_overrides[@]}")
if done_already "$RUN/summary.json"; then
  :
elif [ "${SLURM:-0}" = 1 ]; then
  read -r -a train_sbatch <<< "${TRAIN_SBATCH_ARGS:-}"
  sbatch --wait "${train_sbatch[@]}" slurm/train.sh "${train_args[@]}"
  [ -f "$RUN/summary.json" ] || { echo "$RUN: the job stopped before the end (requeued?); rerun this script" >&2
                                  exit 1; }
else
  recsys24 train --config "${train_args[@]}"
fi

# Full data: about 0.17 (validation) and 0.24 (test) H100-hours, projected; SLURM=1: SHARDS GPUs at once.
step "6. CGh-f scores of validation and test"
for split in validation test; do
  if done_already "$CGHF/$split/scores.parquet"; then
    :
  elif [ "${SLURM:-0}" = 1 ]; then
    SPLIT=$split FEATURES="$FEAT/$split" SUBMISSION="$CGHF/$split.zip" SBATCH_ARGS="--wait ${SBATCH_ARGS:-}" \
      bash slurm/predict.sh "$RUN" "$PREP" "$CGHF/$split" "${SHARDS:-4}"
  else
    recsys24 predict --model "$RUN" --prepared "$PREP" --split "$split" --features "$FEAT/$split" --out "$CGHF/$split"
    recsys24 predict-merge --prepared "$PREP" --split "$split" --out "$CGHF/$split"
  fi
done

# Full data: like step 4 (validation is as large as train): about 16 minutes sampled, with its scores.
step "7. the stacked ranker: validation features with the CGh-f and features-ranker scores"
stacked=(--scores "cgh_f=$CGHF/validation/scores.parquet"
         --scores "ranker=$RANKERS/features/scores/validation/scores.parquet")
done_already "$RANKERS/stacked/ranker.json" || recsys24 rank train --features "$FEAT/validation" "${stacked[@]}" \
  --holdout 0.2 "${rank_args[@]}" --out "$RANKERS/stacked"
done_already "$RANKERS/stacked/scores/validation/scores.parquet" || recsys24 rank predict --model "$RANKERS/stacked" \
  --features "$FEAT/validation" "${stacked[@]}" --out "$RANKERS/stacked/scores/validation"
echo "The 20% of validation users held out of both rankers (out of sample for them):"
recsys24 evaluate --scores "stacked=$RANKERS/stacked/scores/validation/scores.parquet" \
  --scores "ranker=$RANKERS/features/scores/validation/scores.parquet" \
  --scores "CGh-f=$CGHF/validation/scores.parquet" \
  --data "$RAW" --split validation --users "$RANKERS/stacked/holdout_users.parquet"

# Full data: about 9 minutes to score test, 27 s to write the 13.5M-line zip, 20 s to validate it.
step "8. test scores of the stacked ranker and the contest zip"
stacked=(--scores "cgh_f=$CGHF/test/scores.parquet" --scores "ranker=$RANKERS/features/scores/test/scores.parquet")
done_already "$ZIP" || recsys24 rank predict --model "$RANKERS/stacked" --features "$FEAT/test" "${stacked[@]}" \
  --out "$RANKERS/stacked/scores/test" --make-submission --submission "$ZIP"
recsys24 submission validate "$ZIP" --data "$RAW" --split test
echo "the contest entry: $ZIP"
