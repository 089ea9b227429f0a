#!/usr/bin/env bash
# The open experiments of issues 19 and 20 as two lanes, one per core (2-core machine: at most one run per core
# beside interactive work). Every command resumes where it stopped and skips what is done, so after a stop or a
# reboot the same call continues the whole queue:
#
#   experiments/queue.sh            # start both lanes in the background (from the repository root, venv active)
#   experiments/queue.sh --print    # only show what each lane runs, in order
#
# Lane a (issue 19): cadm_halfcheetah (context seed 0, then seed 1 of both, with curve points), then
#   cadm_cartpole's -steps follow-up (seeds 1-4 and their -cadm evaluations), then its -exact evaluations.
# Lane b: juggler_servo_small (its `gradient` follow-up since session 30), then it joins lane a on cadm_halfcheetah
#   (since session 32 before SAC: issue 19's second HalfCheetah seed, two 8-hour trainings that now run side by
#   side, is the largest open part; each run and evaluation is locked, so two sweeps of one experiment never do the
#   same unit), PPO multitask seeds 3-9 (done), SAC multitask seeds 0-2 (200k seeds 1-2 left) and their fine grid
#   (done), cadm_cartpole (-steps, -exact); last the bounce comparison's leftovers (physics seed 2, servo-push,
#   none-mse seed 2: issue 20's bounce target is already met, so they wait since session 30).
# Run it with mbmeta on PATH (its environment active). Each lane appends to its experiments' own logs (sweep.log,
# runs/*.log) and writes its progress to experiments/queue-<lane>.log.
# Stop everything (the lanes, the baseline scripts, then their runs):
#   pkill -f experiments/queue.sh; pkill -f experiments/juggler_baselines/; pkill -f "mbmeta "
set -uo pipefail
script="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"  # absolute: the lanes restart it from the repository root
cd "$(dirname "$script")/.."
export MBMETA_THREADS=1 OMP_NUM_THREADS=1 WANDB_MODE=offline

CARTPOLE_STEPS="mbmeta sweep experiments/cadm_cartpole --methods none-steps context-steps none-steps-cadm context-steps-cadm --jobs 1"
CARTPOLE_EXACT="mbmeta sweep experiments/cadm_cartpole --methods none-steps-exact context-steps-exact --jobs 1"
LANE_A=(
  "mbmeta sweep experiments/cadm_halfcheetah --jobs 1 >> experiments/cadm_halfcheetah/sweep.log 2>&1"
  "$CARTPOLE_STEPS >> experiments/cadm_cartpole/sweep.log 2>&1"
  "$CARTPOLE_EXACT >> experiments/cadm_cartpole/sweep.log 2>&1"
)
LANE_B=(
  "mbmeta sweep experiments/juggler_servo_small --jobs 1 >> experiments/juggler_servo_small/sweep.log 2>&1"
  "mbmeta sweep experiments/cadm_halfcheetah --jobs 1 >> experiments/cadm_halfcheetah/sweep.log 2>&1"
  "experiments/juggler_baselines/ppo_more_seeds.sh > /dev/null 2>&1"
  "experiments/juggler_baselines/sac_multitask.sh > /dev/null 2>&1"
  "experiments/juggler_baselines/sac_fine_grid.sh > /dev/null 2>&1"
  "$CARTPOLE_STEPS >> experiments/cadm_cartpole/sweep.log 2>&1"
  "$CARTPOLE_EXACT >> experiments/cadm_cartpole/sweep.log 2>&1"
  "mbmeta sweep experiments/juggler_bounce_comparison --jobs 1 >> experiments/juggler_bounce_comparison/sweep.log 2>&1"
)

run_lane() {  # name, commands...: run them in order, logging start, end and exit code of each
  local name=$1
  shift
  for command in "$@"; do
    echo "[$(date +%F\ %T)] start $command" >> "experiments/queue-$name.log"
    bash -c "$command"
    local code=$?
    echo "[$(date +%F\ %T)] exit $code $command" >> "experiments/queue-$name.log"
  done
}

if [[ ${1:-} == --print ]]; then
  printf 'lane a: %s\n' "${LANE_A[@]}"
  printf 'lane b: %s\n' "${LANE_B[@]}"
  exit 0
fi
command -v mbmeta > /dev/null || { echo "$0: mbmeta is not on PATH (activate its environment first)" >&2; exit 1; }
if [[ ${1:-} == --lane ]]; then
  case ${2:-} in
    a) run_lane a "${LANE_A[@]}" ;;
    b) run_lane b "${LANE_B[@]}" ;;
    *) echo "experiments/queue.sh: --lane expects a or b, got '${2:-}'" >&2; exit 2 ;;
  esac
  exit 0
fi
if pgrep -f "experiments/queue.sh --lane" > /dev/null; then
  echo "experiments/queue.sh: lanes already running (pgrep -af 'queue.sh --lane'); not starting a second copy" >&2
  exit 1
fi
nohup "$script" --lane a > /dev/null 2>&1 &
nohup "$script" --lane b > /dev/null 2>&1 &
echo "started lanes a and b (progress: experiments/queue-a.log, experiments/queue-b.log)"
