#!/usr/bin/env bash
# Run one line of a `mbmeta sweep --print-commands` file as one task of a SLURM job array.
#
#   mbmeta sweep experiments/pendulum --print-commands > pendulum.commands      # one line per training run
#   sbatch --array=0-$(( $(wc -l < pendulum.commands) - 1 )) experiments/slurm_array.sh pendulum.commands
#   # ... when every task has finished (or `sbatch --dependency=afterany:<job id>`):
#   mbmeta sweep experiments/pendulum --merge-only
#
# Each line trains one run (resuming it if it was started before), evaluates it and skips what is already done, so a
# failed or preempted array task can simply be resubmitted. Submit from the directory the commands were printed in
# (paths in them are relative to it) on a file system every node shares; activate the Python environment that has
# mbmeta (e.g. `source venv/bin/activate` below) before the command runs.
#SBATCH --job-name=mbmeta-sweep
#SBATCH --cpus-per-task=1
#SBATCH --mem=4G
#SBATCH --time=12:00:00
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail
COMMANDS=${1:?usage: slurm_array.sh COMMANDS_FILE (from mbmeta sweep DIR --print-commands)}
: "${SLURM_ARRAY_TASK_ID:?not in a SLURM array task (set SLURM_ARRAY_TASK_ID=N to run line N, counted from 0)}"
export MBMETA_THREADS=1 OMP_NUM_THREADS=1   # one core per task, as the local runner does
LINE=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$COMMANDS")
if [[ -z "$LINE" ]]; then
  echo "slurm_array.sh: $COMMANDS has no line $SLURM_ARRAY_TASK_ID (counted from 0)" >&2
  exit 2
fi
echo "task $SLURM_ARRAY_TASK_ID: $LINE"
eval "$LINE"
