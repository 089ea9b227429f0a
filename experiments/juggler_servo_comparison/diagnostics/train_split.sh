#!/usr/bin/env bash
# Diagnostic (session 14, train tasks): do none and context keep the ball equally on *training* tasks, where the
# context encoder's input is in distribution? The final models of seeds 0-1, evaluated exactly as the sweep evaluates
# them on the test split (16 balanced tasks, one episode each, evaluation seed 0), but on the train split.
# Resumable: a finished output (results.json) is skipped.
cd "$(dirname "$0")/.."
command -v mbmeta > /dev/null || { echo "$0: mbmeta is not on PATH (activate its environment first)" >&2; exit 1; }
export MBMETA_THREADS=1 OMP_NUM_THREADS=1 WANDB_MODE=offline
for seed in 0 1; do for method in none context; do
  out=diagnostics/train_split/$method-seed$seed
  [ -f $out/results.json ] && continue
  mkdir -p $out
  mbmeta evaluate --ckpt runs/$method-seed$seed/model.ckpt --labels $method --split train --episodes_per_task 1 \
    --num_envs 16 --seed 0 --error_horizon 15 --video_tasks 0 --tasks 16 --task_design balanced --out $out \
    > $out/evaluate.log 2>&1 || echo "failed: $out"
done; done
