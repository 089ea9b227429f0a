#!/usr/bin/env bash
# Pendulum comparison at configs/pendulum.yaml's own settings (docs/results.md §1): train each method for each seed,
# then evaluate it on the 16 test tasks x 3 episodes. `mbmeta evaluate` reads the planner from the run's config.json.
# Usage: docs/results/run_pendulum.sh OUT_DIR "METHODS" "SEEDS"   e.g.  /tmp/pend "none context oracle" "3 4 5"
set -euo pipefail
OUT=${1:?output directory}; METHODS=${2:-"none context gradient recurrent oracle"}; SEEDS=${3:-"0 1 2"}
export MBMETA_THREADS=1 OMP_NUM_THREADS=1 WANDB_MODE=${WANDB_MODE:-offline}
mkdir -p "$OUT"
for s in $SEEDS; do
  for m in $METHODS; do
    run="$OUT/pendulum-$m-seed$s"
    mbmeta train --config configs/pendulum.yaml --config "configs/methods/$m.yaml" --loop.seed "$s" \
      --loop.run_dir "$run" --trainer '{"enable_progress_bar": false}' > "$run.train.log" 2>&1
    mbmeta evaluate --ckpt "$run/model.ckpt" --labels "$m" --episodes_per_task 3 --num_envs 16 --video_tasks 0 \
      --out "$OUT/eval-$m-seed$s" > "$OUT/eval-$m-seed$s.log" 2>&1
  done
done
