#!/usr/bin/env bash
# issue 20's fine-tuned transfer (README, "Fine-tuned transfer"): the context and none models of seeds 0-2, 1 and 5
# random-action episodes of each of the 4 transfer tasks (test tasks 1, 5, 8, 15), 2 evaluation episodes each.
# Resumable: a (model, task) whose transfer.json exists is skipped; models not trained yet are skipped with a note.
cd "$(dirname "$0")"
command -v mbmeta > /dev/null || { echo "$0: mbmeta is not on PATH (activate its environment first)" >&2; exit 1; }
export MBMETA_THREADS=1 OMP_NUM_THREADS=1 WANDB_MODE=offline
TASKS=(
  '{"ball_mass_scale": 0.5, "friction_scale": 1.5, "restitution_scale": 0.6, "gear_scale": 0.5}:1'
  '{"ball_mass_scale": 0.6, "friction_scale": 0.6, "restitution_scale": 0.5, "gear_scale": 1.7}:5'
  '{"ball_mass_scale": 1.5, "friction_scale": 0.5, "restitution_scale": 1.5, "gear_scale": 1.5}:8'
  '{"ball_mass_scale": 1.7, "friction_scale": 1.7, "restitution_scale": 1.7, "gear_scale": 0.6}:15'
)
for seed in 0 1 2; do for method in context none; do
  run=runs/$method-seed$seed
  if [ ! -f $run/sweep.json ] || ! grep -q '"status": "done"' $run/sweep.json; then
    echo "skip $run: not trained yet"; continue
  fi
  for task in "${TASKS[@]}"; do
    out=results/transfer/$method-seed$seed/task${task##*:}
    [ -f $out/transfer.json ] && continue
    mkdir -p $out
    mbmeta transfer --ckpt $run/model.ckpt --task "${task%:*}" --episodes 1 5 --eval_episodes 2 --seed 0 \
      --out $out > $out/transfer.log 2>&1 || echo "failed: $out (see $out/transfer.log)"
  done
done; done
