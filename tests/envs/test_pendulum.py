"""Pendulum-specific checks: the physics is what the docs say, the parameters act, and the closed form is exact."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import mbmeta.envs  # noqa: F401  (registers the envs)
from mbmeta.envs.pendulum import FAMILY, MAX_SPEED, pendulum_cost, pendulum_dynamics

ENV_ID = "mbmeta/Pendulum-v0"
TASKS = [
    {"mass": 1.0, "length": 1.0},
    {"mass": 0.75, "length": 1.25},
    {"mass": 1.25, "length": 0.8},
    {"mass": 0.2, "length": 1.8},
    {"mass": 1.8, "length": 0.2},
    {"mass": 0.5, "length": 1.3},
]


@pytest.fixture
def env():
    env = gym.make(ENV_ID)
    yield env
    env.close()


def run(env, task, actions, seed=0, state=None):
    """Observations [T+1, 3] and rewards [T] for a fixed action sequence [T, 1]."""
    obs, _ = env.reset(seed=seed, options={"task": task})
    if state is not None:
        env.unwrapped.set_state(np.array([state[0]]), np.array([state[1]]))
        obs = env.unwrapped._get_obs()
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, *_ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
    return np.array(observations), np.array(rewards)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: f"m{t['mass']}-l{t['length']}")
def test_pendulum_dynamics_matches_env(env, task):
    rng = np.random.default_rng(0)
    actions = rng.uniform(-2.5, 2.5, size=(200, 1)).astype(np.float32)  # beyond the range: clamping must agree too
    obs, _ = run(env, task, actions, seed=1)
    obs_t, act_t = torch.as_tensor(obs[:-1]), torch.as_tensor(actions)
    predicted = pendulum_dynamics(obs_t, act_t, task["mass"], task["length"])
    err64 = (predicted - torch.as_tensor(obs[1:])).abs().max().item()
    assert err64 <= 1e-12, f"float64 closed form off by {err64:.3g}"
    predicted32 = pendulum_dynamics(obs_t.float(), act_t, task["mass"], task["length"])
    assert predicted32.dtype == torch.float32
    err32 = (predicted32.double() - torch.as_tensor(obs[1:])).abs().max().item()
    assert err32 <= 1e-5, f"float32 closed form off by {err32:.3g}"


def test_pendulum_dynamics_batched_tasks_broadcast():
    # [B, N, 3] with per-row tasks [B, 1] equals row-by-row calls with float tasks
    gen = torch.Generator().manual_seed(0)
    theta = torch.rand(3, 7, generator=gen) * 2 * math.pi - math.pi
    obs = torch.stack((theta.cos(), theta.sin(), torch.randn(3, 7, generator=gen)), dim=-1)
    action = torch.rand(3, 7, 1, generator=gen) * 4 - 2
    mass = torch.tensor([[0.2], [1.0], [1.8]])
    length = torch.tensor([[1.8], [1.0], [0.2]])
    batched = pendulum_dynamics(obs, action, mass, length)
    assert batched.shape == (3, 7, 3)
    for b in range(3):
        row = pendulum_dynamics(obs[b], action[b], float(mass[b, 0]), float(length[b, 0]))
        torch.testing.assert_close(batched[b], row)


def test_pendulum_dynamics_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="obs"):
        pendulum_dynamics(torch.zeros(4, 2), torch.zeros(4, 1), 1.0, 1.0)
    with pytest.raises(ValueError, match="action"):
        pendulum_dynamics(torch.zeros(4, 3), torch.zeros(4, 2), 1.0, 1.0)


@pytest.mark.parametrize("length", [0.5, 1.0, 1.8])
def test_small_oscillation_period_follows_length(env, length):
    # hanging pendulum (θ = π) released from a small angle: period 2π sqrt(l / g), independent of mass
    steps = 300
    obs, _ = run(env, {"mass": 0.6, "length": length}, np.zeros((steps, 1), np.float32), state=(math.pi - 0.05, 0.0))
    swing = obs[:, 1]  # sin θ oscillates around 0
    crossings = np.flatnonzero(np.sign(swing[:-1]) != np.sign(swing[1:]))
    # linear interpolation of the zero crossings; a period spans two crossings
    times = [(i + swing[i] / (swing[i] - swing[i + 1])) * 0.05 for i in crossings]
    period = 2 * np.mean(np.diff(times))
    expected = 2 * math.pi * math.sqrt(length * 1.0 / 10.0)
    assert abs(period - expected) / expected < 0.02, (period, expected)


def test_mass_scales_torque_response(env):
    # from rest upright a torque u gives θ̈ ≈ u / (m l²): halving the mass doubles the velocity gained in one step
    gained = {}
    for mass in (0.5, 1.0):
        obs, _ = run(env, {"mass": mass, "length": 1.0}, np.array([[1.0]], np.float32), state=(0.0, 0.0))
        gained[mass] = obs[1, 2]
    assert gained[1.0] == pytest.approx(0.05, rel=0.01)  # u dt / (m l²) with m = l = 1 (+ a little gravity)
    assert gained[0.5] / gained[1.0] == pytest.approx(2.0, rel=1e-4)


@pytest.mark.parametrize("parameter", ["mass", "length"])
def test_each_parameter_changes_trajectories(env, parameter):
    actions = np.random.default_rng(3).uniform(-2, 2, size=(50, 1)).astype(np.float32)
    base = {"mass": 1.0, "length": 1.0}
    obs_a, _ = run(env, base, actions, seed=4)
    obs_b, _ = run(env, {**base, parameter: 0.5}, actions, seed=4)
    np.testing.assert_array_equal(obs_a[0], obs_b[0])  # same start ...
    assert np.abs(obs_a - obs_b).max() > 0.1  # ... different motion


def test_reward_is_classic_cost_of_pre_step_state(env):
    obs, rewards = run(env, {"mass": 1.0, "length": 1.0}, np.full((20, 1), 3.0, np.float32), seed=2)
    theta = np.arctan2(obs[:-1, 1], obs[:-1, 0])
    expected = -(theta**2 + 0.1 * obs[:-1, 2] ** 2 + 0.001 * 2.0**2)  # action 3 clamps to 2
    np.testing.assert_allclose(rewards, expected, rtol=0, atol=1e-12)
    assert pendulum_cost(0.0, 0.0, 0.0) == 0.0


def test_speed_clipped_and_never_terminates(env):
    # the lightest, shortest test task under a constant full torque spins up fast
    env.reset(seed=0, options={"task": {"mass": 0.2, "length": 0.2}})
    speeds = []
    for _ in range(200):
        obs, _, terminated, truncated, _ = env.step(np.array([2.0], np.float32))
        speeds.append(abs(obs[2]))
        assert not terminated
    assert truncated, "200-step time limit"
    assert max(speeds) == pytest.approx(MAX_SPEED)


def test_reset_distribution(env):
    starts = np.array([env.reset(seed=s)[0] for s in range(200)])
    theta = np.arctan2(starts[:, 1], starts[:, 0])
    assert theta.min() < -2.8 and theta.max() > 2.8  # covers [-π, π]
    assert np.all(np.abs(starts[:, 2]) <= 1.0) and np.ptp(starts[:, 2]) > 1.5


def test_splits_are_cadm():
    grid = {round(0.75 + 0.05 * i, 2) for i in range(11)}
    rng = np.random.default_rng(0)
    for task in FAMILY.sample(rng, 300, "train"):
        assert task["mass"] in grid and task["length"] in grid
    corners = {(0.2, 1.6), (0.2, 1.8), (0.4, 1.6), (0.4, 1.8)}
    corners |= {(m, ln) for m in (0.5, 0.7) for ln in (1.3, 1.5)}
    corners |= {(m, ln) for m in (1.3, 1.5) for ln in (0.5, 0.7)}
    corners |= {(m, ln) for m in (1.6, 1.8) for ln in (0.2, 0.4)}
    seen = {(t["mass"], t["length"]) for t in FAMILY.sample(rng, 2000, "test")}
    assert seen == corners
