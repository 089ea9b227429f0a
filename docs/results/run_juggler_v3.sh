#!/usr/bin/env bash
# Juggler balance, round 4: the round-3 model, fitting and planner (run_juggler_v2.sh), but iteration 0 collects
# 16 episodes of the scripted controller with per-episode action noise (std drawn from [0, 0.5] of the half-range:
# some episodes keep the ball all 500 steps, most lose it after 40-130), so the models see near-balanced states;
# then 4 iterations x 8 MPC episodes. The controller never sees the task.
# Usage: docs/results/run_juggler_v3.sh OUT_DIR "METHODS" [extra train flags]   e.g.  /tmp/juggler-v3 "none context"
set -euo pipefail
OUT=${1:?output directory}; METHODS=${2:-"none context oracle"}; TRAIN_FLAGS=("${@:3}")
export MBMETA_THREADS=1 OMP_NUM_THREADS=1 WANDB_MODE=${WANDB_MODE:-offline} MUJOCO_GL=${MUJOCO_GL:-egl}
BUDGET=(--loop.iterations 4 --loop.initial_episodes 16 --loop.initial_policy scripted --loop.initial_noise 0.5
        --loop.episodes_per_iteration 8 --loop.num_envs 8 --loop.epochs_per_iteration 5 --data.samples_per_epoch 12800)
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
