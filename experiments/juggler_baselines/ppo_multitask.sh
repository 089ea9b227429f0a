#!/usr/bin/env bash
# issue 20's PPO multitask baseline, seeds 0-2 (experiments/juggler_baselines/README.md); resumable
cd /work/main
source /work/venv/bin/activate
export MBMETA_THREADS=1 OMP_NUM_THREADS=1 WANDB_MODE=offline
OUT=experiments/juggler_baselines/runs
EVAL="--eval_every 10000 --eval_tasks 16 --eval_task_design balanced --eval_envs 16 --final_episodes 1"
for seed in 0 1 2; do
  [ -f $OUT/ppo-multitask-seed$seed/results.json ] && continue  # finished: keep its log
  mbmeta baseline --family juggler_balance_servo --algo ppo --mode multitask --total_steps 1000000 $EVAL \
    --eval_episodes 1 --seed $seed --out $OUT/ppo-multitask-seed$seed --wandb.tags '[juggler_baselines, ppo, multitask]' \
    > $OUT/ppo-multitask-seed$seed.log 2>&1
done
