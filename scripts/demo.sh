#!/usr/bin/env bash
# The whole pipeline on built-in synthetic demo data, into ./demo_run and ./submission
# (installs into ./.venv on first use). 16.5 minutes on an idle 2-core CPU before CatBoost, the refit and the blend joined.
source "$(dirname "$0")/lib.sh"
RUN="${DEMO_DIR:-demo_run}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
mkdir -p "$RUN/results"  # what the closing summary reprints

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
baseline=$(for name in random popular category freshness inview-count; do
  printf '%s ' "$name"
  recsys24 evaluate --scores "$RUN/scores/validation/$name.parquet" --data "$RUN/data" --split validation --json \
    | python -c 'import json,sys; print(json.load(sys.stdin)["auc"])'
done | sort -k2 -g | tail -n 1 | cut -d' ' -f1)
step "4. contest zip of the best baseline ($baseline) on the test split"
recsys24 predict --model "baseline:$baseline" --prepared "$RUN/prepared" --split test --out "$RUN/scores/test-$baseline" \
  --make-submission --submission "submission/baseline-$baseline.zip"

step "5. train a tiny CGc and a tiny CGh (prompt d) with DeepSpeed on CPU"
for arch in cgc cgh; do
  recsys24 train --config "configs/tiny/${arch}_d.yaml" --output "$RUN/runs/tiny_${arch}_d" \
    train.train_data="$RUN/prepared/train" train.valid_data="$RUN/prepared/validation"
done

step "6. score the validation split with both; compare with the baselines"
# scores inside the run folders, so that `recsys24 report` finds each run's metrics.jsonl and model
for arch in cgc cgh; do
  recsys24 predict --model "$RUN/runs/tiny_${arch}_d" --prepared "$RUN/prepared" --split validation \
    --out "$RUN/runs/tiny_${arch}_d/scores/validation"
  recsys24 predict-merge --prepared "$RUN/prepared" --split validation --out "$RUN/runs/tiny_${arch}_d/scores/validation"
done
recsys24 evaluate --scores "tiny CGh-d=$RUN/runs/tiny_cgh_d/scores/validation/scores.parquet" \
  --scores "tiny CGc-d=$RUN/runs/tiny_cgc_d/scores/validation/scores.parquet" "${scores[@]}" \
  --data "$RUN/data" --split validation

step "7. test scores and a contest zip from the trained CGh (its fast scoring path)"
recsys24 predict --model "$RUN/runs/tiny_cgh_d" --prepared "$RUN/prepared" --split test --out "$RUN/scores/test-cgh_d" \
  --make-submission --submission submission/cgh_d.zip

step "8. contest features of every split"
for split in train validation test; do
  recsys24 features --data "$RUN/data" --split "$split" --out "$RUN/features/$split"
done

step "9. a tiny CGh-f: the CGh whose candidate position also reads the pair's features"
recsys24 train --config configs/tiny/cgh_f.yaml --output "$RUN/runs/tiny_cgh_f" \
  train.train_data="$RUN/prepared/train" train.valid_data="$RUN/prepared/validation" \
  train.train_features="$RUN/features/train" train.valid_features="$RUN/features/validation"
recsys24 predict --model "$RUN/runs/tiny_cgh_f" --prepared "$RUN/prepared" --split validation \
  --features "$RUN/features/validation" --out "$RUN/runs/tiny_cgh_f/scores/validation"
recsys24 predict-merge --prepared "$RUN/prepared" --split validation --out "$RUN/runs/tiny_cgh_f/scores/validation"
recsys24 predict --model "$RUN/runs/tiny_cgh_f" --prepared "$RUN/prepared" --split test \
  --features "$RUN/features/test" --out "$RUN/scores/test-cgh_f" --make-submission --submission submission/cgh_f.zip

step "10. rankers over the features: LightGBM, CatBoost, a refit, a stacked ranker and a blend"
# Every ranker keeps the same 20% of the validation users (--holdout 0.2, seed 0) out of all it fits and
# early-stops on, so each is scored out of sample on them at the end.
# Level 1, features only, trained on train and early-stopped on the other 80% of validation:
recsys24 rank train --features "$RUN/features/train" --valid-features "$RUN/features/validation" --holdout 0.2 \
  --out "$RUN/rankers/features"
recsys24 rank train --learner catboost --features "$RUN/features/train" --valid-features "$RUN/features/validation" \
  --holdout 0.2 --out "$RUN/rankers/catboost"
# ... and the LightGBM trained again on train + that 80% at its best round count (the winners' recipe for test)
recsys24 rank train --features "$RUN/features/train" --valid-features "$RUN/features/validation" --holdout 0.2 \
  --refit --out "$RUN/rankers/refit"
for ranker in features catboost refit; do
  for split in validation test; do
    recsys24 rank predict --model "$RUN/rankers/$ranker" --features "$RUN/features/$split" \
      --out "$RUN/rankers/$ranker/scores/$split"
  done
done
# Level 2: stacked on validation (the features plus the scores of models trained on train), and a blend of
# the level-1 models whose weights are fitted on the same 80% of the validation users
stacked=(--scores "cgh=$RUN/runs/tiny_cgh_d/scores/validation/scores.parquet"
         --scores "cgh_f=$RUN/runs/tiny_cgh_f/scores/validation/scores.parquet"
         --scores "ranker=$RUN/rankers/features/scores/validation/scores.parquet"
         --scores "catboost=$RUN/rankers/catboost/scores/validation/scores.parquet")
recsys24 rank train --features "$RUN/features/validation" "${stacked[@]}" --holdout 0.2 --out "$RUN/rankers/stacked"
recsys24 rank predict --model "$RUN/rankers/stacked" --features "$RUN/features/validation" "${stacked[@]}" \
  --out "$RUN/rankers/stacked/scores/validation"
blended() { echo --scores "ranker=$RUN/rankers/features/scores/$1/scores.parquet" \
  --scores "catboost=$RUN/rankers/catboost/scores/$1/scores.parquet" --scores "cgh_f=$2"; }
# shellcheck disable=SC2046
recsys24 rank blend fit $(blended validation "$RUN/runs/tiny_cgh_f/scores/validation/scores.parquet") \
  --data "$RUN/data" --split validation --holdout 0.2 --out "$RUN/rankers/blend"
for split in validation test; do
  cgh_f="$RUN/runs/tiny_cgh_f/scores/validation/scores.parquet"
  [ "$split" = test ] && cgh_f="$RUN/scores/test-cgh_f/scores.parquet"
  # shellcheck disable=SC2046
  recsys24 rank blend apply --model "$RUN/rankers/blend" $(blended "$split" "$cgh_f") --data "$RUN/data" \
    --split "$split" --out "$RUN/rankers/blend/scores/$split.parquet"
done
rankers=(--scores "ranker (stacked)=$RUN/rankers/stacked/scores/validation/scores.parquet"
         --scores "blend=$RUN/rankers/blend/scores/validation.parquet"
         --scores "ranker (refit)=$RUN/rankers/refit/scores/validation/scores.parquet"
         --scores "ranker (features)=$RUN/rankers/features/scores/validation/scores.parquet"
         --scores "CatBoost (features)=$RUN/rankers/catboost/scores/validation/scores.parquet")
cgh_valid=(--scores "tiny CGh-f=$RUN/runs/tiny_cgh_f/scores/validation/scores.parquet"
           --scores "tiny CGh-d=$RUN/runs/tiny_cgh_d/scores/validation/scores.parquet")
echo "Whole validation split (the stacked ranker, the blend and the refit fitted on 80% of these users: in sample there):"
recsys24 evaluate "${rankers[@]}" "${cgh_valid[@]}" "${scores[@]}" --data "$RUN/data" --split validation \
  | tee "$RUN/results/validation.txt"
echo "The held-out 20% of validation users, out of sample for every row:"
holdout="$RUN/rankers/stacked/holdout_users.parquet"
holdout_scores=("${rankers[@]}" "${cgh_valid[@]}" --scores "category=$RUN/scores/validation/category.parquet")
[ "$baseline" = category ] || holdout_scores+=(--scores "$baseline=$RUN/scores/validation/$baseline.parquet")
recsys24 evaluate "${holdout_scores[@]}" --data "$RUN/data" --split validation --users "$holdout" \
  | tee "$RUN/results/holdout.txt"

step "11. the contest submission from the best of them on the held-out users"
recsys24 evaluate "${holdout_scores[@]}" --data "$RUN/data" --split validation --users "$holdout" --json \
  > "$RUN/results/holdout.json"
held_out_auc() { python -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["auc"])' \
  "$RUN/results/holdout.json" "$1"; }
best=$(for name in features refit stacked blend; do
  label="ranker ($name)"
  [ "$name" = blend ] && label=blend
  printf '%s %s\n' "$name" "$(held_out_auc "$label")"
done | sort -k2 -g | tail -n 1 | cut -d' ' -f1)
echo "the best on the held-out users: $best"
case "$best" in
  stacked)
    recsys24 rank predict --model "$RUN/rankers/stacked" --features "$RUN/features/test" \
      --scores "cgh=$RUN/scores/test-cgh_d/scores.parquet" --scores "cgh_f=$RUN/scores/test-cgh_f/scores.parquet" \
      --scores "ranker=$RUN/rankers/features/scores/test/scores.parquet" \
      --scores "catboost=$RUN/rankers/catboost/scores/test/scores.parquet" \
      --out "$RUN/scores/test-stacked" --make-submission --submission submission/predictions.zip ;;
  blend) test_scores="$RUN/rankers/blend/scores/test.parquet" ;;
  *) test_scores="$RUN/rankers/$best/scores/test/scores.parquet" ;;
esac
if [ "$best" != stacked ]; then
  recsys24 submission write --scores "$test_scores" --data "$RUN/data" --split test --out submission/predictions.zip
  recsys24 submission validate submission/predictions.zip --data "$RUN/data" --split test
fi

step "12. report: tables and figures comparing the models with the baselines"
items=()
for name in random popular category freshness inview-count; do
  items+=("$name=$RUN/scores/validation/$name.parquet")
done
recsys24 report "ranker (features)=$RUN/rankers/features" "ranker (stacked)=$RUN/rankers/stacked" \
  "CatBoost (features)=$RUN/rankers/catboost" \
  "tiny CGh-f=$RUN/runs/tiny_cgh_f/scores/validation" "tiny CGh-d=$RUN/runs/tiny_cgh_d/scores/validation" "tiny CGc-d=$RUN/runs/tiny_cgc_d/scores/validation" \
  "${items[@]}" --data "$RUN/data" --split validation --out "$RUN/report"

step "Done: the results, the zip to submit, the report"
echo "Whole validation split (the stacked ranker, the blend and the refit are in sample on 80% of its users):"
cat "$RUN/results/validation.txt"
echo "Held-out 20% of validation users (out of sample for every model: the fair comparison):"
cat "$RUN/results/holdout.txt"
best_label="ranker ($best)"
[ "$best" = blend ] && best_label=blend
printf 'Submit: submission/predictions.zip = %s, the best of the rankers and the blend on the held-out users (AUC %.4f)\n' \
  "$best_label" "$(held_out_auc "$best_label")"
echo "The other zips (a single model or a baseline each, for comparison; not to submit):"
printf '  %-34s %s (held-out AUC %.4f)\n' \
  "submission/baseline-$baseline.zip" "the best heuristic baseline, $baseline" "$(held_out_auc "$baseline")" \
  "submission/cgh_d.zip" "the tiny CGh-d alone" "$(held_out_auc "tiny CGh-d")" \
  "submission/cgh_f.zip" "the tiny CGh-f alone" "$(held_out_auc "tiny CGh-f")"
echo "Report: $RUN/report/index.html (open it in a browser)"
