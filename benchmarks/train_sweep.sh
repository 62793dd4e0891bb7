#!/usr/bin/env bash
# Training throughput of CGc on mt5-base, one DeepSpeed configuration per line, for one GPU session.
#
#   bash benchmarks/train_sweep.sh eager|compiled|flex BATCHES_32 [BATCHES_128]
#
# SIZE=tiny runs the same sweep on a CPU as a smoke test. BATCHES_* are files from `bench_train.py save` (32 and 128 pairs per batch). Each group fits one
# 10-minute device command. Every line is bench_train.py's summary; --profile adds where the GPU time went.
set -u
group=${1:?eager, compiled or flex}
b32=${2:?saved 32-pair batches}
b128=${3:-$2}
here=$(dirname "$0")

run() {
  echo "--- bench_train.py run --size ${SIZE:-base} $*"
  timeout 280 "${PYTHON:-python}" "$here/bench_train.py" run --size "${SIZE:-base}" "$@" 2>&1 \
    | grep -E ": CGc mt5|^profile|^ +[0-9.]+ ms/step|Error|out of memory" || echo "(no result: exit ${PIPESTATUS[0]})"
}

case "$group" in
  eager)
    run --batches "$b32" --steps 60 --profile 3
    run --batches "$b32" --steps 60 --zero zero0
    run --batches "$b128" --pairs 64 --steps 40 --grad-accum 4 ;;
  compiled)
    run --batches "$b32" --steps 80 --compile --profile 3
    run --batches "$b128" --pairs 64 --steps 60 --compile --grad-accum 4
    run --batches "$b128" --steps 40 --compile
    run --batches "$b128" --steps 40 --compile --checkpointing ;;
  flex)  # FlexAttention (no [B, H, L, L] bias tensors) has no dropout, so compare both without dropout
    run --batches "$b32" --steps 60 --compile --dropout 0
    run --batches "$b32" --steps 60 --compile --dropout 0 --attn flex_attention
    run --batches "$b128" --steps 40 --compile --dropout 0 --attn flex_attention ;;
  *) echo "train_sweep.sh: group must be eager, compiled or flex, not $group" >&2; exit 2 ;;
esac
