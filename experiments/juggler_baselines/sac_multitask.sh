#!/usr/bin/env bash
# issue 20's SAC multitask baseline, seeds 0-2, 200k steps, evaluated every 10k (README); resumable
exec "$(dirname "$0")/run_multitask.sh" sac-multitask sac 200000 10000
