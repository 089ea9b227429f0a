"""docs/bring_your_own_robot.md: its example files are the tested ones, and its commands run end to end.

The guide's commands are read from the guide itself and run as a user runs them (`python -m mbmeta ...` in a copy
of examples/reacher/), with a tiny budget added; the true-dynamics example must beat random actions.
"""

import csv
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mbmeta.data.buffer import EpisodeBuffer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "reacher"
GUIDE = ROOT / "docs" / "bring_your_own_robot.md"

TINY = """\
loop: {iterations: 1, initial_episodes: 2, episodes_per_iteration: 1, num_envs: 1, epochs_per_iteration: 1}
model: {ensemble_size: 1, hidden_sizes: [16], context_hidden: [16], latent_dim: 4}
data: {batch_size: 16, samples_per_epoch: 64, val_samples: 16}
agent: {planner: {class_path: cem, init_args: {population: 16, elites: 4, iterations: 1}}, horizon: 3}
"""
TINY_FLAGS = {
    "train": ["--config", "tiny.yaml"],
    "evaluate": ["--tasks", "1", "--episodes_per_task", "1", "--num_envs", "1", "--video_tasks", "0"],
}


def guide_commands() -> list[list[str]]:
    """The command lines of the guide's ```bash blocks."""
    blocks = re.findall(r"```bash\n(.*?)```", GUIDE.read_text(), flags=re.S)
    return [shlex.split(line) for block in blocks for line in block.splitlines() if line.strip()]


def test_the_guide_shows_the_example_files_as_they_are():
    guide = GUIDE.read_text()
    for name in ("reacher_family.py", "own_loop.py"):
        assert (EXAMPLE / name).read_text() in guide, f"docs/bring_your_own_robot.md does not show {name} as it is"


def test_the_guides_commands_train_evaluate_and_act_on_a_tiny_budget(tmp_path):
    work = tmp_path / "reacher"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("runs", "results", "__pycache__"))
    (work / "tiny.yaml").write_text(TINY)
    commands = guide_commands()
    assert [argv[:2] for argv in commands] == [
        ["mbmeta", "train"], ["mbmeta", "evaluate"], ["python", "own_loop.py"],
        ["mbmeta", "collect"], ["mbmeta", "train"],
    ]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    outputs = {}
    for argv in commands:
        program = [sys.executable, "-m", "mbmeta"] if argv[0] == "mbmeta" else [sys.executable]
        full = program + argv[1:] + TINY_FLAGS.get(argv[1], [])
        proc = subprocess.run(full, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{' '.join(argv)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        outputs.setdefault(argv[1], proc.stdout)

    # train: the family came from the user's module by its import path, and the run records that path
    run_dir = work / "runs" / "reacher"
    assert json.loads((run_dir / "config.json").read_text())["loop"]["family"] == "reacher_family:FAMILY"
    buffer = EpisodeBuffer.load(run_dir / "buffer.npz")
    assert buffer.family == "reacher_gear" and buffer.env_id == "Reacher-v5" and buffer.num_episodes == 3
    for episode in range(buffer.num_episodes):
        task = buffer.task(episode)
        assert 0.5 <= task["gear"] <= 1.5 and 0.5 <= task["damping"] <= 1.5  # train split

    # evaluate: found the family again from the run, and ran it on a test task
    with open(work / "results" / "reacher" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(
        float(row["task.gear"]) in (0.3, 2.0) and float(row["task.damping"]) in (0.5, 3.0) for row in rows
    )

    # the agent in the user's own loop
    returns = re.search(r"returns \[(.*?)\]", outputs["own_loop.py"])
    assert returns and len(returns.group(1).split(",")) == 2

    # a run started from recorded episodes: they are its iteration 0, then one MPC iteration follows
    recorded = EpisodeBuffer.load(work / "robot_log.npz")
    from_log = EpisodeBuffer.load(work / "runs" / "reacher_from_log" / "buffer.npz")
    assert recorded.num_episodes == 4 and from_log.num_episodes == 4 + 1
    np.testing.assert_array_equal(from_log.episode(3)["obs"], recorded.episode(3)["obs"])
    with open(work / "runs" / "reacher_from_log" / "learning_curve.csv") as f:
        assert [row["policy"] for row in csv.DictReader(f)] == ["buffer", "mpc"]


def _true_dynamics_example():
    spec = importlib.util.spec_from_file_location("true_dynamics_example", ROOT / "examples" / "true_dynamics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example():
    return _true_dynamics_example()


@pytest.fixture(scope="module")
def pendulum():
    from mbmeta.envs import get_family

    family = get_family("pendulum")
    return family, family.sample(np.random.default_rng(0), 1, "test")[0]  # mass 1.8, length 0.4


def test_mujoco_as_the_model_predicts_the_env_step(example, pendulum):
    family, task = pendulum
    env = family.make_env()
    obs, _ = env.reset(seed=1, options={"task": task})
    dynamics = example.MujocoDynamics(
        [env.unwrapped.model], env.unwrapped.frame_skip, example.pendulum_state, example.pendulum_obs
    )
    rng = np.random.default_rng(0)
    for _ in range(30):
        action = rng.uniform(-2.0, 2.0, size=1)
        next_obs, *_ = env.step(action)
        row = torch.as_tensor(obs, dtype=torch.float64)[None, None], torch.as_tensor(action)[None, None]
        predicted = dynamics(*row).mean[0, 0].numpy()  # obs [E=1, B=1, O]
        np.testing.assert_allclose(predicted, next_obs, atol=1e-12)
        obs = next_obs


def test_planning_with_the_true_dynamics_beats_random_actions(example, pendulum):
    family, task = pendulum
    planned = example.plan_episode(family, task, 60, population=50)
    random = example.random_episode(family, task, 60)
    assert planned > random + 100, (planned, random)  # measured: -121 against -419


def test_the_agent_plans_with_the_true_dynamics_too(example, pendulum):
    from mbmeta.control import MPCAgent
    from mbmeta.planners import CEMPlanner

    family, task = pendulum
    env = family.make_env(max_episode_steps=60)
    obs, _ = env.reset(seed=0, options={"task": task})
    dynamics = example.MujocoDynamics(
        [env.unwrapped.model], env.unwrapped.frame_skip, example.pendulum_state, example.pendulum_obs
    )
    planner = CEMPlanner(env.action_space.low, env.action_space.high, population=50, elites=10, iterations=3)
    agent = MPCAgent(example.KnownTask(dynamics), planner, family.reward, family.terminated, horizon=15)
    total, done = 0.0, False
    while not done:
        action = agent.act(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        agent.observe(obs, action, next_obs, reward, terminated)
        obs, total, done = next_obs, total + reward, terminated or truncated
    assert total > example.random_episode(family, task, 60) + 100
