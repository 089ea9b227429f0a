#!/usr/bin/env bash
# Diagnostic (session 28, validation split; no setting was chosen on it): do the final `none` and `context` models
# of seeds 0-4 lose balls on the family's validation split (every parameter 0.7 or 1.35x nominal: outside the train
# range 0.8-1.2, inside the test split's gap), as `context` does on the test tasks with restitution 1.7x? If they
# did, the split would be the place to choose a remedy without the test tasks. All 16 validation tasks, one episode
# each, evaluation seed 0, as the sweep evaluates the test split. Resumable: a finished output is skipped.
# Run from the repository root with mbmeta installed (its environment active).
set -u
cd "$(dirname "$0")/../../.."
export MBMETA_THREADS=1 OMP_NUM_THREADS=1 WANDB_MODE=offline
here=experiments/juggler_servo_small
for seed in 0 1 2 3 4; do for method in none context; do
  out=$here/diagnostics/validation_split/$method-seed$seed
  [ -f $out/results.json ] && continue
  mkdir -p $out
  mbmeta evaluate --ckpt $here/runs/$method-seed$seed/model.ckpt --split validation --tasks 16 \
    --episodes_per_task 1 --num_envs 16 --seed 0 --video_tasks 0 --out $out > $out/evaluate.log 2>&1 \
    || echo "failed: $out"
done; done
