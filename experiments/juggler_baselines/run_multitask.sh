#!/usr/bin/env bash
# One multitask baseline configuration of issue 20 for training seeds 0-2 (or $SEEDS, e.g. SEEDS="3 4 5 6 7 8 9")
# on the servo Juggler, evaluated on the 16 balanced test tasks (README).
# Usage: [SEEDS="..."] run_multitask.sh NAME ALGO TOTAL_STEPS EVAL_EVERY
# Resumable: finished seeds (runs/NAME-seed<s>/results.json) are skipped, so their logs are kept.
set -u
name=$1 algo=$2 total=$3 every=$4
cd "$(dirname "$0")/../.."
command -v mbmeta > /dev/null || { echo "$0: mbmeta is not on PATH (activate its environment first)" >&2; exit 1; }
export MBMETA_THREADS=1 OMP_NUM_THREADS=1 WANDB_MODE=offline
OUT=experiments/juggler_baselines/runs
for seed in ${SEEDS:-0 1 2}; do
  [ -f $OUT/$name-seed$seed/results.json ] && continue
  mbmeta baseline --family juggler_balance_servo --algo $algo --mode multitask --total_steps $total \
    --eval_every $every --eval_tasks 16 --eval_task_design balanced --eval_envs 16 --final_episodes 1 \
    --eval_episodes 1 --seed $seed --out $OUT/$name-seed$seed --wandb.tags "[juggler_baselines, $algo, $name]" \
    >> $OUT/$name-seed$seed.log 2>&1
done
