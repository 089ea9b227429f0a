#!/usr/bin/env bash
# issue 20's SAC multitask baseline, seeds 0-2, 200k steps each (README); resumable (checkpoints every 100k steps;
# finished seeds are skipped so that their logs are kept)
cd "$(dirname "$0")/../.."
source /work/venv/bin/activate
export MBMETA_THREADS=1 OMP_NUM_THREADS=1 WANDB_MODE=offline
OUT=experiments/juggler_baselines/runs
EVAL="--eval_every 10000 --eval_tasks 16 --eval_task_design balanced --eval_envs 16 --final_episodes 1"
for seed in 0 1 2; do
  [ -f $OUT/sac-multitask-seed$seed/results.json ] && continue
  mbmeta baseline --family juggler_balance_servo --algo sac --mode multitask --total_steps 200000 $EVAL \
    --eval_episodes 1 --seed $seed --out $OUT/sac-multitask-seed$seed --wandb.tags '[juggler_baselines, sac, multitask]' \
    >> $OUT/sac-multitask-seed$seed.log 2>&1
done
