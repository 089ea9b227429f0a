#!/usr/bin/env bash
# issue 20's sample-efficiency follow-up (juggler_servo_small README, "Seeds 3-9"; declared 2026-12-06 before any of
# these runs): PPO multitask seeds 3-9 as seeds 0-2 were run, 1M steps evaluated every 10k, then their first 100k
# steps again evaluated every 2k (the fine grid); resumable (finished runs are skipped)
here="$(dirname "$0")"
export SEEDS="3 4 5 6 7 8 9"
"$here/run_multitask.sh" ppo-multitask ppo 1000000 10000
"$here/run_multitask.sh" ppo-fine ppo 100000 2000
