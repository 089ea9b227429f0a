#!/usr/bin/env bash
# issue 20's PPO from scratch on each transfer task (test tasks 1, 5, 8, 15) x seeds 0-2, 200k steps each (README);
# resumable, finished runs skipped
cd "$(dirname "$0")/../.."
command -v mbmeta > /dev/null || { echo "$0: mbmeta is not on PATH (activate its environment first)" >&2; exit 1; }
export MBMETA_THREADS=1 OMP_NUM_THREADS=1 WANDB_MODE=offline
OUT=experiments/juggler_baselines/runs
EVAL="--eval_every 10000 --eval_tasks 16 --eval_task_design balanced --eval_envs 16 --final_episodes 1"
for seed in 0 1 2; do for task in 1 5 8 15; do
  run=$OUT/ppo-scratch-task$task-seed$seed
  [ -f $run/results.json ] && continue
  mbmeta baseline --family juggler_balance_servo --algo ppo --mode scratch --task_index $task --total_steps 200000 \
    $EVAL --eval_episodes 4 --seed $seed --out $run --wandb.tags '[juggler_baselines, ppo, scratch]' >> $run.log 2>&1
done; done
