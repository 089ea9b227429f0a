#!/usr/bin/env bash
# issue 20: PPO multitask seeds 0-2 again for their first 100k steps with an evaluation every 2,000 steps (README,
# "Fine grid"), to locate where PPO first reaches a mean test balance time of 225 to within 2k steps instead of 10k;
# finished seeds are skipped
cd "$(dirname "$0")/../.."
source /work/venv/bin/activate
export MBMETA_THREADS=1 OMP_NUM_THREADS=1 WANDB_MODE=offline
OUT=experiments/juggler_baselines/runs
EVAL="--eval_every 2000 --eval_tasks 16 --eval_task_design balanced --eval_envs 16 --final_episodes 1"
for seed in 0 1 2; do
  [ -f $OUT/ppo-fine-seed$seed/results.json ] && continue
  mbmeta baseline --family juggler_balance_servo --algo ppo --mode multitask --total_steps 100000 $EVAL \
    --eval_episodes 1 --seed $seed --out $OUT/ppo-fine-seed$seed --wandb.tags '[juggler_baselines, ppo, fine-grid]' \
    >> $OUT/ppo-fine-seed$seed.log 2>&1
done
