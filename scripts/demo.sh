#!/usr/bin/env bash
# The whole pipeline on built-in synthetic demo data, into ./demo_run and ./submission
# (installs into ./.venv on first use). About 10-15 minutes on a 2-core CPU.
source "$(dirname "$0")/env.sh"
RUN="${DEMO_DIR:-demo_run}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. synthetic EB-NeRD demo data"
recsys24 synth "$RUN/data" --preset demo --seed 0
step "2. validate and prepare each split"
for split in train validation test; do
  recsys24 prepare --data "$RUN/data" --split "$split" --out "$RUN/prepared/$split"
done

step "3. heuristic baselines on the validation split"
scores=()
for name in random popular category freshness inview-count; do
  recsys24 baseline "$name" --data "$RUN/data" --split validation --out "$RUN/scores/validation/$name.parquet"
  scores+=(--scores "$name=$RUN/scores/validation/$name.parquet")
done
recsys24 evaluate "${scores[@]}" --data "$RUN/data" --split validation
best=$(for name in random popular category freshness inview-count; do
  printf '%s ' "$name"
  recsys24 evaluate --scores "$RUN/scores/validation/$name.parquet" --data "$RUN/data" --split validation --json \
    | python -c 'import json,sys; print(json.load(sys.stdin)["auc"])'
done | sort -k2 -g | tail -n 1 | cut -d' ' -f1)
step "4. contest zip of the best baseline ($best) on the test split"
recsys24 predict --model "baseline:$best" --data "$RUN/prepared" --split test --out "$RUN/scores/test-$best" \
  --make-submission --submission "submission/baseline-$best.zip"

step "5. train a tiny CGc and a tiny CGh (prompt d) with DeepSpeed on CPU"
for arch in cgc cgh; do
  recsys24 train --config "configs/tiny/${arch}_d.yaml" --output "$RUN/runs/tiny_${arch}_d" \
    train.train_data="$RUN/prepared/train" train.valid_data="$RUN/prepared/validation"
done

step "6. score the validation split with both; compare with the baselines"
# scores inside the run folders, so that `recsys24 report` finds each run's metrics.jsonl and model
for arch in cgc cgh; do
  recsys24 predict --model "$RUN/runs/tiny_${arch}_d" --data "$RUN/prepared" --split validation \
    --out "$RUN/runs/tiny_${arch}_d/scores/validation"
  recsys24 predict-merge --data "$RUN/prepared" --split validation --out "$RUN/runs/tiny_${arch}_d/scores/validation"
done
recsys24 evaluate --scores "tiny CGh-d=$RUN/runs/tiny_cgh_d/scores/validation/scores.parquet" \
  --scores "tiny CGc-d=$RUN/runs/tiny_cgc_d/scores/validation/scores.parquet" "${scores[@]}" \
  --data "$RUN/data" --split validation

step "7. the contest submission from the trained CGh (its fast scoring path)"
recsys24 predict --model "$RUN/runs/tiny_cgh_d" --data "$RUN/prepared" --split test --out "$RUN/scores/test-cgh_d" \
  --make-submission --submission submission/predictions.zip

step "8. report: tables and figures comparing the models with the baselines"
items=()
for name in random popular category freshness inview-count; do
  items+=("$name=$RUN/scores/validation/$name.parquet")
done
recsys24 report "tiny CGh-d=$RUN/runs/tiny_cgh_d/scores/validation" "tiny CGc-d=$RUN/runs/tiny_cgc_d/scores/validation" \
  "${items[@]}" --data "$RUN/data" --split validation --out "$RUN/report"
