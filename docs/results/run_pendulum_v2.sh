#!/usr/bin/env bash
# Pendulum comparison, second round (docs/results.md §1b): the configs/pendulum.yaml budget with CaDM's CEM
# (200 candidates, 50 elites, 5 iterations, H = 30, alpha = 0.1) instead of the light CEM 100 x 3, H = 20.
# Usage: docs/results/run_pendulum_v2.sh OUT_DIR "METHODS" "SEEDS"   e.g.  /tmp/pend-v2 "none context oracle" "0 1 2"
# `mbmeta evaluate` reads the planner from each run's config.json, so no --agent flags are repeated there.
set -euo pipefail
OUT=${1:?output directory}; METHODS=${2:-"none context gradient recurrent oracle"}; SEEDS=${3:-"0 1 2"}
export MBMETA_THREADS=1 OMP_NUM_THREADS=1 WANDB_MODE=${WANDB_MODE:-offline}
PLANNER=(--agent.planner cem --agent.planner_options '{"population": 200, "elites": 50, "iterations": 5, "alpha": 0.1}'
         --agent.horizon 30)
for s in $SEEDS; do
  for m in $METHODS; do
    run="$OUT/pendulum-$m-seed$s"
    mbmeta train --config configs/pendulum.yaml --config "configs/methods/$m.yaml" --loop.seed "$s" \
      --loop.run_dir "$run" "${PLANNER[@]}" --trainer '{"enable_progress_bar": false}' > "$run.train.log" 2>&1 \
      || mbmeta train --config configs/pendulum.yaml --config "configs/methods/$m.yaml" --loop.seed "$s" \
        --loop.run_dir "$run" "${PLANNER[@]}" --trainer '{"enable_progress_bar": false}' > "$run.train.log" 2>&1
    # (a failed first attempt is resumed once: `mbmeta train` continues from the last completed iteration)
    mbmeta evaluate --ckpt "$run/model.ckpt" --labels "$m" --episodes_per_task 3 --num_envs 16 --video_tasks 0 \
      --out "$OUT/eval-$m-seed$s" > "$OUT/eval-$m-seed$s.log" 2>&1
  done
done
