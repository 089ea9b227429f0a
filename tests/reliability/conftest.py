"""Tiny budgets shared by the reliability tests: every run finishes in seconds on 2 loaded CPU cores."""

import json
import os
import sys
from pathlib import Path

import pytest

from mbmeta.control.settings import AgentSettings
from mbmeta.runs.settings import LoopSettings

EPISODE_STEPS = 40
LOOP = {
    "family": "pendulum",
    "seed": 3,
    "iterations": 1,
    "initial_episodes": 3,
    "episodes_per_iteration": 2,
    "num_envs": 2,
    "epochs_per_iteration": 1,
}
MODEL = {
    "ensemble_size": 2,
    "hidden_sizes": [16, 16],
    "reward_hidden": [16],
    "context_hidden": [16],
    "latent_dim": 4,
}
DATA = {"context_length": 5, "target_length": 3, "batch_size": 32, "samples_per_epoch": 128, "val_samples": 32}
PLANNER = {"class_path": "cem", "init_args": {"population": 16, "elites": 4, "iterations": 1}}
AGENT = {"planner": PLANNER, "horizon": 3, "context_length": DATA["context_length"]}
ENV = {"max_episode_steps": EPISODE_STEPS}


def tiny_settings(run_dir: Path, **loop_overrides) -> dict:
    """Keyword arguments of ``run_training`` for a tiny run in ``run_dir``."""
    return {
        "loop": LoopSettings(run_dir=str(run_dir), **{**LOOP, **loop_overrides}),
        "model": dict(MODEL),
        "data": dict(DATA),
        "agent": AgentSettings.from_config(AGENT),
        "trainer": {"enable_progress_bar": False},
        "logger": False,
        "log": lambda line: None,
        "env_kwargs": dict(ENV),
    }


def train_argv(run_dir: Path, **loop_overrides) -> list[str]:
    """The ``mbmeta train`` command line of the same tiny run."""
    loop = {**LOOP, **loop_overrides}
    argv = [sys.executable, "-m", "mbmeta", "train", "--loop.run_dir", str(run_dir)]
    for key, value in loop.items():
        argv += [f"--loop.{key}", str(value)]
    for key, value in MODEL.items():
        argv += [f"--model.{key}", json.dumps(value)]
    for key, value in DATA.items():
        argv += [f"--data.{key}", str(value)]
    argv += ["--agent.planner", PLANNER["class_path"]]
    argv += [f"--agent.planner.{key}={value}" for key, value in PLANNER["init_args"].items()]
    argv += ["--agent.horizon", str(AGENT["horizon"]), "--agent.context_length", str(AGENT["context_length"])]
    argv += ["--env_kwargs", json.dumps(ENV)]
    argv += ["--trainer", json.dumps({"enable_progress_bar": False})]
    return argv


def subprocess_env() -> dict[str, str]:
    """Environment of CLI subprocesses: no W&B at all, unbuffered output, one thread (as the test process)."""
    return {
        **os.environ,
        "WANDB_MODE": "disabled",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


@pytest.fixture(autouse=True)
def _no_wandb(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A completed tiny run (buffer, checkpoint, state); copy it before changing anything in it."""
    from mbmeta.runs.loop import run_training

    run_dir = tmp_path_factory.mktemp("tiny_run")
    previous = os.environ.get("WANDB_MODE")
    os.environ["WANDB_MODE"] = "disabled"
    try:
        run_training(**tiny_settings(run_dir))
    finally:
        if previous is None:
            os.environ.pop("WANDB_MODE")
        else:
            os.environ["WANDB_MODE"] = previous
    return run_dir
