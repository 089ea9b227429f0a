#!/usr/bin/env bash
# issue 20: SAC multitask seeds 0-2 again for their first 20k steps, evaluated every 1,000 steps (README, "SAC fine
# grid", declared in session 29), to locate where SAC first reaches a mean test balance time of 225 to within 1k
# steps; resumable
exec "$(dirname "$0")/run_multitask.sh" sac-fine sac 20000 1000
