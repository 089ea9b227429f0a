"""A run told physics: ``model.known_physics`` through the training loop, its checkpoint, the agent and evaluation.

Why this exists: the juggler bounce pilots train with ``--model.known_physics`` (issue 20); the physics must be fitted
in the loop, saved in every checkpoint, rebuilt by every reader, and adapt when it declares so.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import mbmeta.envs
from mbmeta.control.agent import MPCAgent
from mbmeta.control.settings import AgentSettings
from mbmeta.envs.juggler_contact import ARM_GAINS
from mbmeta.models.checkpoint import load_dynamics
from mbmeta.planners import ICEMPlanner
from mbmeta.runs.loop import run_training
from mbmeta.types import Transition

from .conftest import tiny_settings

FAMILY = "juggler_bounce_servo"
GENERIC = {"stiffness": 2e4, "damping": 100.0, "friction_rate": 100.0, "friction": 0.5}


def _run(tmp_path, known_physics: str, **agent):
    settings = tiny_settings(tmp_path / "run", family=FAMILY, initial_episodes=24)
    settings["agent"] = AgentSettings.from_config({**settings["agent"].as_config(), **agent})
    model = {"adaptation": "none", "learn_reward": False, "known_physics": known_physics}
    settings["model"] = {**settings["model"], **model}
    settings["data"] = {**settings["data"], "samples_per_epoch": 512}
    settings["env_kwargs"] = {"max_episode_steps": 20}
    run_training(**settings)
    return tmp_path / "run" / "model.ckpt"


def test_the_loop_fits_the_physics_and_the_checkpoint_keeps_it(tmp_path):
    checkpoint = _run(tmp_path, "mbmeta.envs.juggler_contact:BallContact")
    model = load_dynamics(checkpoint)
    fitted = model.physics.parameters_dict()
    assert type(model.physics).__name__ == "BallContact"
    assert any(abs(fitted[k] / GENERIC[k] - 1) > 1e-3 for k in GENERIC)  # the loop's fit moved the constants
    obs = torch.zeros(2, 1, 3, 14)
    obs[..., 10] = 1.5  # a ball far above the paddle: it flies
    prediction = model.adapt(_empty())(obs, torch.zeros(2, 1, 3, 3))
    assert bool((prediction.var[..., 6:] == 0).all())
    family = mbmeta.envs.get_family(FAMILY)
    planner = ICEMPlanner(family.action_space.low, family.action_space.high, population=8, elites=2, iterations=1)
    agent = MPCAgent.from_checkpoint(checkpoint, planner, family.reward, family.terminated, horizon=3)
    env = family.make_env()
    try:
        obs, _ = env.reset(seed=0)
        for _ in range(3):
            action = agent.act(obs)
            next_obs, *_ = env.step(action)
            agent.observe(obs, action, next_obs)
            obs = next_obs
    finally:
        env.close()
    assert agent.plan_stats.calls == 3


@pytest.mark.parametrize(("physics", "width"), [("AdaptiveBallContact", 1), ("AdaptiveArmBallContact", 2)])
def test_an_adapting_physics_gets_a_state_in_the_agent(tmp_path, physics, width):
    checkpoint = _run(tmp_path, f"mbmeta.envs.juggler_contact:{physics}")
    model = load_dynamics(checkpoint)
    adapted = model.adapt(_empty(2))
    assert adapted.physics_state is not None and adapted.physics_state.shape == (2, width)
    if width == 1:
        return
    # the agent adapts on each episode's context: the arm's gain comes from the network's own predictions there
    family = mbmeta.envs.get_family(FAMILY)
    planner = ICEMPlanner(family.action_space.low, family.action_space.high, population=8, elites=2, iterations=1)
    agent = MPCAgent.from_checkpoint(checkpoint, planner, family.reward, family.terminated, horizon=3, context_length=5)
    env = family.make_env()
    rows = []
    try:
        obs, _ = env.reset(seed=0)
        for _ in range(4):  # planning through the two-column state
            action = agent.act(obs)
            next_obs, *_ = env.step(action)
            agent.observe(obs, action, next_obs)
            rows.append((obs, action, next_obs))
            obs = next_obs
    finally:
        env.close()
    assert agent.plan_stats.calls == 4
    o, a, n = (torch.tensor(np.array(column), dtype=torch.float32)[None] for column in zip(*rows, strict=True))
    state = model.adapt(Transition(o, a, n, torch.zeros(1, 4), torch.zeros(1, 4, dtype=torch.bool))).physics_state
    gains = ARM_GAINS.to(state.dtype)
    assert state.shape == (1, 2) and bool((gains - state[0, 1].exp()).abs().min() < 1e-5)  # a gain of the grid


def _empty(b: int = 1):
    from mbmeta.types import Transition

    return Transition(torch.zeros(b, 0, 14), torch.zeros(b, 0, 3), torch.zeros(b, 0, 14), torch.zeros(b, 0),
                      torch.zeros(b, 0, dtype=torch.bool))  # fmt: skip


def test_the_loop_collects_with_another_physics_and_keeps_the_trained_one(tmp_path, monkeypatch):
    from mbmeta.envs.juggler_contact import AdaptiveArmBallContact

    calls = []
    adapt = AdaptiveArmBallContact.adapt
    monkeypatch.setattr(AdaptiveArmBallContact, "adapt", lambda self, *a, **k: calls.append(k) or adapt(self, *a, **k))
    checkpoint = _run(
        tmp_path,
        "mbmeta.envs.juggler_contact:BallContact",
        physics="mbmeta.envs.juggler_contact:AdaptiveArmBallContact",
    )
    model = load_dynamics(checkpoint)
    assert type(model.physics).__name__ == "BallContact"  # the checkpoint holds the physics the model was trained with
    fitted = model.physics.parameters_dict()
    assert any(abs(fitted[k] / GENERIC[k] - 1) > 1e-3 for k in GENERIC)  # fitted in the loop, as without the option
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["agent"]["physics"] == "mbmeta.envs.juggler_contact:AdaptiveArmBallContact"
    assert calls and all("predict" in k for k in calls)  # the MPC episodes were planned with the arm's variant
