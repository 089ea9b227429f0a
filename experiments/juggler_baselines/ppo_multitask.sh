#!/usr/bin/env bash
# issue 20's PPO multitask baseline, seeds 0-2, 1M steps, evaluated every 10k (README); resumable
exec "$(dirname "$0")/run_multitask.sh" ppo-multitask ppo 1000000 10000
