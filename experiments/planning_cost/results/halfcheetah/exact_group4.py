"""The exact planner's 4th group of cadm_halfcheetah episodes (16-20), run in its own process in session 13.

The same call ``benchmarks/planning_cost.py``'s ``measure_returns`` makes for that group (tasks 16-20 of the seed-0
train draw, 5 environments per planner call, evaluation seed 0, 200 steps); the benchmark's own process was stopped
after group 3 and these returns were appended to ``partial/cadm_exact.returns.json`` (from the repository root:
``python experiments/planning_cost/results/halfcheetah/exact_group4.py``).
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "benchmarks"))

from planning_cost import SETTINGS  # noqa: E402

from mbmeta.commands.run_config import run_agent_settings  # noqa: E402
from mbmeta.control.settings import AgentSettings  # noqa: E402
from mbmeta.envs import get_family  # noqa: E402
from mbmeta.evaluation.episodes import evaluate_agent  # noqa: E402
from mbmeta.training.checkpoint import load_module  # noqa: E402

torch.set_num_threads(1)
ckpt = str(ROOT / "experiments/planning_cost/runs/halfcheetah-context/model.ckpt")
family = get_family("cadm_halfcheetah")
agent = AgentSettings.from_config({**run_agent_settings(ckpt)[1], **SETTINGS["cadm_exact"]})
tasks = family.sample(np.random.default_rng([0, 0]), 20, "train")
evaluation = evaluate_agent(
    load_module(ckpt), family, tasks[15:20], agent=agent, num_envs=5, seed=0, env_kwargs={"max_episode_steps": 200}
)
print(json.dumps([r.episode_return for r in sorted(evaluation.records, key=lambda r: r.task_id)]))
