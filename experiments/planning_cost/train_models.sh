#!/usr/bin/env bash
# The fixed models the planning-cost benchmark plans with (issue 19, part 1): CaDM's model and data settings
# (experiments/cadm_reference/configs), a reduced budget and a cheap collection planner (only the model matters
# here; the planners compared in the benchmark are set there): TS-1 with one particle costs one ensemble member per
# row, E = 5 times less than expectation. Resumable: re-run the same command after a kill.
# Usage: experiments/planning_cost/train_models.sh pendulum|cartpole|halfcheetah
set -euo pipefail
cd "$(dirname "$0")/../.."
export MBMETA_THREADS=1 OMP_NUM_THREADS=1 WANDB_MODE=${WANDB_MODE:-offline}
FAMILY=${1:?pendulum, cartpole or halfcheetah}
case "$FAMILY" in
  pendulum|cartpole) ITERATIONS=10 ;;   # 10 random + 10 x 10 MPC episodes of 200 steps: 22k transitions
  halfcheetah) ITERATIONS=3 ;;    # 10 random + 3 x 10 MPC episodes of 1000 steps: 40k transitions
  *) echo "unknown family $FAMILY" >&2; exit 2 ;;
esac
RUN=experiments/planning_cost/runs/$FAMILY-context
mkdir -p "$RUN"
mbmeta train --config experiments/cadm_reference/configs/$FAMILY.yaml \
  --config experiments/cadm_reference/configs/methods/context.yaml \
  --loop.seed 0 --loop.iterations $ITERATIONS --loop.run_dir "$RUN" \
  --agent.planner cem --agent.planner.population 200 --agent.planner.elites 20 --agent.planner.iterations 3 \
  --agent.propagation ts1 --agent.particles 1 --agent.precision bf16 \
  --trainer '{"enable_progress_bar": false}' >> "$RUN.train.log" 2>&1
