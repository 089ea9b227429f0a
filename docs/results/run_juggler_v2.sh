#!/usr/bin/env bash
# Juggler balance, second round (docs/results.md §0.4): configs/juggler_balance.yaml's model with a budget sized for
# one core. Random episodes last ~25 steps (with zero torque the arm sags and the ball is lost after 19 steps), so
# the budget is set in episodes: 64 random + 8 iterations x 8 MPC episodes; planner iCEM 64 x 3 (8 elites), H = 15,
# expectation propagation (round 1's planner; the config's iCEM 300 x 4, H = 20 costs 6.9 s per step for 8 envs).
# Usage: docs/results/run_juggler_v2.sh OUT_DIR "METHODS" [extra train flags, which override the ones below]
#        e.g.  /tmp/juggler-v2 "none context"
set -euo pipefail
OUT=${1:?output directory}; METHODS=${2:-"none context gradient recurrent oracle"}; TRAIN_FLAGS=("${@:3}")
export MBMETA_THREADS=1 OMP_NUM_THREADS=1 WANDB_MODE=${WANDB_MODE:-offline} MUJOCO_GL=${MUJOCO_GL:-egl}
BUDGET=(--loop.iterations 8 --loop.initial_episodes 64 --loop.episodes_per_iteration 8 --loop.num_envs 8
        --loop.epochs_per_iteration 5 --data.samples_per_epoch 12800)
PLANNER=(--agent.planner icem --agent.planner_options '{"population": 64, "elites": 8, "iterations": 3}'
         --agent.horizon 15 --agent.context_size 10 --agent.propagation expectation)
mkdir -p "$OUT"
for m in $METHODS; do
  run="$OUT/juggler-$m"
  mbmeta train --config configs/juggler_balance.yaml --config "configs/methods/$m.yaml" --loop.run_dir "$run" \
    "${BUDGET[@]}" "${PLANNER[@]}" "${TRAIN_FLAGS[@]}" --trainer '{"enable_progress_bar": false}' > "$run.train.log" 2>&1
  # the planner comes from the run's config.json; 8 of the 256 test tasks (evenly spaced) x 2 episodes
  mbmeta evaluate --ckpt "$run/model.ckpt" --labels "$m" --tasks 8 --episodes_per_task 2 --num_envs 8 \
    --video_tasks 1 --out "$OUT/eval-$m" > "$OUT/eval-$m.log" 2>&1
done
