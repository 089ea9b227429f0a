#!/usr/bin/env bash
# issue 20: PPO multitask seeds 0-2 again for their first 100k steps, evaluated every 2,000 steps (README, "Fine
# grid"), to locate where PPO first reaches a mean test balance time of 225 to within 2k steps; resumable
exec "$(dirname "$0")/run_multitask.sh" ppo-fine ppo 100000 2000
