#!/usr/bin/env bash
# Juggler balance, round 4 (docs/results.md R4.2): run_juggler_v2.sh's model, fitting, planner and evaluation, but
# iteration 0 collects 16 episodes of the scripted controller with per-episode action noise (std drawn from
# [0, 0.5] of the half-range: some episodes keep the ball all 500 steps, most lose it after 40-130), so the models
# see near-balanced states; then 4 iterations x 8 MPC episodes. The controller never sees the task.
# Usage: docs/results/run_juggler_v3.sh OUT_DIR "METHODS" [extra train flags]   e.g.  /tmp/juggler-v3 "none context"
set -euo pipefail
OUT=${1:?output directory}; METHODS=${2:-"none context oracle"}
exec "$(dirname "$0")/run_juggler_v2.sh" "$OUT" "$METHODS" --loop.iterations 4 --loop.initial_episodes 16 \
  --loop.initial_policy scripted --loop.initial_noise 0.5 "${@:3}"
