#!/usr/bin/env bash
# CGh-f on one GPU through the real commands, timed: synth -> prepare -> features -> `recsys24 train`
# (DeepSpeed, bf16, the shipped configs/cgh_f.yaml on a random mt5-base) -> `recsys24 predict --features`.
#
#   bash benchmarks/gpu_wheels.sh .gpu_wheels          # here: the wheels a bare GPU image lacks (once)
#   bash benchmarks/gpu_cgh.sh .gpu_wheels OUT          # there, with .gpu_wheels carried; OUT gets the logs
#
# Prints the training pairs/s (the median of the logged steps after the first 20), the predict pairs/s and
# the GPU's peak memory. STEPS (300), MICRO (32 pairs a step), SIZE (base; tiny for a CPU smoke run with
# DS_ACCELERATOR=cpu), PRESET (demo) and COMPILE (false: train.compile) change the run; ALSO_COMPILED=S trains
# once more with train.compile=true when fewer than S seconds have passed by then.
set -u -o pipefail
wheels=${1:-}
out=${2:?usage: gpu_cgh.sh WHEELS_DIR OUT_DIR}
size=${SIZE:-base} steps=${STEPS:-300} micro=${MICRO:-32} preset=${PRESET:-demo} compile=${COMPILE:-false}
work=${WORK:-/tmp/gpu_cgh}
py=${PYTHON:-python3}
mkdir -p "$out" "$work"
export PYTHONPATH=$PWD:$work/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export PATH=$work/site/bin:$PATH TOKENIZERS_PARALLELISM=false
stamp() { echo "$(date +%T) == $*"; }
r() { "$py" -m recsys24 "$@"; }

main() {
  stamp "machine"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  "$py" -V; nproc
  if [ -n "$wheels" ]; then
    stamp "wheels from $wheels"
    # into a folder of their own, first on the path: the image's own packages stay as they are
    local pip=("$py" -m pip install -q --no-index --no-deps --disable-pip-version-check --target "$work/site")
    "${pip[@]}" "$wheels"/*.whl || for w in "$wheels"/*.whl; do "${pip[@]}" "$w" || echo "not installed: $w"; done
  fi
  "$py" -c "import torch, transformers, deepspeed, polars; print('torch', torch.__version__, 'transformers',
transformers.__version__, 'deepspeed', deepspeed.__version__, 'polars', polars.__version__,
'cuda', torch.cuda.is_available())" || return 1

  stamp "data: synth --preset $preset, prepare and features of train and validation"
  r synth "$work/data" --preset "$preset" --seed 0 --splits train,validation || return 1
  for split in train validation; do
    r prepare --data "$work/data" --split "$split" --out "$work/prepared/$split" || return 1
    r features --data "$work/data" --split "$split" --out "$work/features/$split" || return 1
  done

  stamp "backbone: random mt5-$size"
  "$py" benchmarks/gpu_backbone.py --articles "$work/data/articles.parquet" --size "$size" \
    --out "$work/backbone" || return 1

  stamp "train: CGh-f, $steps steps of $micro pairs, compile $compile"
  (nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 >"$out/gpu_memory_mib.txt" 2>/dev/null &
   echo $! >"$work/smi.pid")
  local t0=$SECONDS
  r train --config configs/cgh_f.yaml --output "$work/run" model.backbone="$work/backbone" \
    train.train_data="$work/prepared/train" train.valid_data="$work/prepared/validation" \
    train.train_features="$work/features/train" train.valid_features="$work/features/validation" \
    train.steps="$steps" train.micro_batch="$micro" train.eval_every="$steps" train.save_every="$steps" \
    train.eval_impressions=500 train.log_every=10 train.compile="$compile" || return 1
  echo "train wall: $((SECONDS - t0)) s (setup, $steps steps, one evaluation, the checkpoint and the export)"
  cp "$work/run/metrics.jsonl" "$out/metrics.jsonl"

  stamp "predict: validation with its features"
  t0=$SECONDS
  r predict --model "$work/run" --prepared "$work/prepared" --split validation \
    --features "$work/features/validation" --out "$work/scores" || return 1
  echo "predict wall: $((SECONDS - t0)) s"
  r predict-merge --prepared "$work/prepared" --split validation --out "$work/scores" || return 1
  r evaluate --scores "CGh-f random mt5-$size=$work/scores/scores.parquet" --data "$work/data" --split validation

  if [ -n "${ALSO_COMPILED:-}" ] && [ "$SECONDS" -lt "${ALSO_COMPILED}" ]; then  # time left: train.compile too
    stamp "train: the same with train.compile=true"
    t0=$SECONDS
    r train --config configs/cgh_f.yaml --output "$work/run-compiled" model.backbone="$work/backbone" \
      train.train_data="$work/prepared/train" train.valid_data="$work/prepared/validation" \
      train.train_features="$work/features/train" train.valid_features="$work/features/validation" \
      train.steps="$steps" train.micro_batch="$micro" train.eval_every="$steps" train.save_every="$steps" \
      train.eval_impressions=500 train.log_every=10 train.compile=true || return 1
    echo "compiled train wall: $((SECONDS - t0)) s"
    cp "$work/run-compiled/metrics.jsonl" "$out/metrics-compiled.jsonl"
  fi
}

summary() {
  kill "$(cat "$work/smi.pid" 2>/dev/null)" 2>/dev/null
  stamp "summary"
  "$py" - "$out" "$work" <<'PY'
import json, sys
from pathlib import Path
import polars as pl
out, work = Path(sys.argv[1]), Path(sys.argv[2])
for name in ("metrics.jsonl", "metrics-compiled.jsonl"):
    path = out / name
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    steady = sorted(r["samples_per_s"] for r in rows if r.get("step", 0) > 20 and "samples_per_s" in r)
    if steady:
        losses = [r["loss"] for r in rows if "loss" in r]
        print(f"train ({name}): {len(steady)} logged steps after step 20, pairs/s median "
              f"{steady[len(steady) // 2]:,.1f} (min {steady[0]:,.1f}, max {steady[-1]:,.1f}); "
              f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")
mem = out / "gpu_memory_mib.txt"
if mem.exists() and mem.read_text().strip():
    print(f"GPU memory used at most: {max(int(x) for x in mem.read_text().split()) / 1024:.1f} GiB")
behaviors = work / "data" / "validation" / "behaviors.parquet"
if behaviors.exists():
    pairs = pl.scan_parquet(behaviors).select(pl.col("article_ids_inview").list.len().sum()).collect().item()
    print(f"predict: the validation split has {pairs:,} impression-candidate pairs (divide by predict wall)")
PY
}

main 2>&1 | tee "$out/log.txt"
status=${PIPESTATUS[0]}
summary 2>&1 | tee -a "$out/log.txt"
exit "$status"
