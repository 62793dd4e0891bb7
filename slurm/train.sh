#!/usr/bin/env bash
# Fine-tune on SLURM with DeepSpeed, one task per GPU, resumable after preemption.
#
#   sbatch slurm/train.sh configs/cgc_d.yaml [--output RUN_DIR] [key=value ...]
#   sbatch --nodes=4 slurm/train.sh configs/cgc_d.yaml          # 4 nodes x 4 GPUs
#   sbatch --gres=gpu:1 --ntasks-per-node=1 slurm/train.sh ...   # one GPU (or a CPU node)
#
# Run sbatch from the repository root (the job uses $SLURM_SUBMIT_DIR/.venv unless
# RECSYS24_PYTHON is set). Before a time limit or preemption SLURM sends SIGUSR1
# (--signal); every rank then saves a checkpoint and exits 75, and the job requeues
# itself (--requeue); the rerun continues from the latest checkpoint. Logs go to
# RUN_DIR/logs/ (one file per rank and one for the job).
#SBATCH --job-name=recsys24-train
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=4
#SBATCH --gres=gpu:4
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --signal=USR1@300
#SBATCH --open-mode=append
set -uo pipefail

CONFIG=${1:?usage: sbatch slurm/train.sh CONFIG [--output RUN_DIR] [key=value ...]}
shift
RUN="runs/$(basename "${CONFIG%.*}")"
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --output) RUN="$2"; shift 2 ;;
    --output=*) RUN="${1#--output=}"; shift ;;
    *) EXTRA+=("$1"); shift ;;
  esac
done
cd "${SLURM_SUBMIT_DIR:-.}"
mkdir -p "$RUN/logs"
exec >>"$RUN/logs/job-${SLURM_JOB_ID:-local}.out" 2>&1
PY="${RECSYS24_PYTHON:-$PWD/.venv/bin/python}"

# Rendezvous: the first host of the allocation, a port derived from the job id.
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
MASTER_PORT=$((20000 + ${SLURM_JOB_ID:-0} % 20000))
export MASTER_ADDR MASTER_PORT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}
echo "$(date -Is) job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0}) on $SLURM_JOB_NODELIST:" \
  "${SLURM_NTASKS:-1} tasks, master $MASTER_ADDR:$MASTER_PORT"

srun --kill-on-bad-exit=1 --output "$RUN/logs/rank-%t.log" --open-mode=append \
  "$PY" -m recsys24 train --config "$CONFIG" --output "$RUN" "${EXTRA[@]}"
rc=$?
echo "$(date -Is) training exited with $rc"
if [ "$rc" -eq 75 ] && [ -n "${SLURM_JOB_ID:-}" ] && [ "${RECSYS24_REQUEUE:-1}" = 1 ]; then
  echo "stopped by a signal after saving a checkpoint: requeueing job $SLURM_JOB_ID"
  scontrol requeue "$SLURM_JOB_ID"
fi
exit "$rc"
