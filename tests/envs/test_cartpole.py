"""Cart-pole-specific checks: the physics is a cart with a uniform pole, the parameters act, reward and termination."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import mbmeta.envs  # noqa: F401  (registers the envs)
from mbmeta.envs.cartpole import FAMILY, RAIL_LIMIT

ENV_ID = "mbmeta/CartPoleSwingUp-v0"
CART_MASS, POLE_MASS, G = 1.0, 0.1, 9.81


@pytest.fixture
def env():
    env = gym.make(ENV_ID)
    yield env
    env.close()


def run_from(env, task, state, actions):
    """Observations [T+1, 5], rewards [T], terminated [T] from an exact state (x, θ, xdot, θdot)."""
    env.reset(seed=0, options={"task": task})
    env.unwrapped.set_state(np.array(state[:2], float), np.array(state[2:], float))
    observations, rewards, terms = [env.unwrapped._get_obs()], [], []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        terms.append(terminated)
        if terminated or truncated:
            break
    return np.array(observations), np.array(rewards), np.array(terms)


def free_period(length):
    """Small-oscillation period of a uniform pole hanging from a free (unforced, frictionless) cart."""
    inertia_pivot, d, total = POLE_MASS * length**2 / 3, length / 2, CART_MASS + POLE_MASS
    omega2 = total * POLE_MASS * G * d / (total * inertia_pivot - (POLE_MASS * d) ** 2)
    return 2 * math.pi / math.sqrt(omega2)


@pytest.mark.parametrize("length", [0.2, 0.5, 0.8])
def test_pole_length_sets_the_swing_period(env, length):
    obs, _, _ = run_from(env, {"force": 10.0, "length": length}, (0.0, math.pi - 0.05, 0.0, 0.0), np.zeros((200, 1)))
    swing = obs[:, 2]  # sin θ oscillates around 0 while hanging
    crossings = np.flatnonzero(np.sign(swing[:-1]) != np.sign(swing[1:]))
    times = [(i + swing[i] / (swing[i] - swing[i + 1])) * 0.05 for i in crossings]
    period = 2 * np.mean(np.diff(times))
    assert period == pytest.approx(free_period(length), rel=0.02)


def test_force_scales_the_push(env):
    # from rest with the pole hanging, one step of full action: the cart's velocity gain is proportional to the force
    gains = {}
    for force in (5.0, 15.0):
        obs, _, _ = run_from(env, {"force": force, "length": 0.5}, (0.0, math.pi, 0.0, 0.0), np.ones((1, 1)))
        gains[force] = obs[1, 3]
    assert gains[15.0] / gains[5.0] == pytest.approx(3.0, rel=0.01)
    # ≈ F dt / (M + m) at first (the hanging pole barely pushes back at small angles)
    assert gains[5.0] == pytest.approx(5.0 * 0.05 / (CART_MASS + POLE_MASS), rel=0.1)


@pytest.mark.parametrize("parameter,value", [("force", 15.0), ("length", 0.6)])
def test_each_parameter_changes_trajectories(env, parameter, value):
    actions = np.random.default_rng(0).uniform(-1, 1, size=(60, 1)).astype(np.float32)
    base = {"force": 10.0, "length": 0.5}
    start = (0.0, math.pi - 0.02, 0.0, 0.0)
    obs_a, _, _ = run_from(env, base, start, actions)
    obs_b, _, _ = run_from(env, {**base, parameter: value}, start, actions)
    n = min(len(obs_a), len(obs_b))  # a run may leave the rail early
    assert np.abs(obs_a[:n] - obs_b[:n]).max() > 0.05


def test_reward_shape(env):
    # hanging and still: ~0; upright, centred and still with no action: 1; off centre or spinning: less
    _, r_hang, _ = run_from(env, {"force": 10.0, "length": 0.5}, (0.0, math.pi, 0.0, 0.0), np.zeros((1, 1)))
    assert r_hang[0] == pytest.approx(0.0, abs=1e-6)
    obs = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0], [1.5, 1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 8.0]])
    reward = FAMILY.reward(obs, torch.zeros(3, 1), obs)
    assert reward[0] == pytest.approx(1.0)
    assert reward[1] < 0.7 and reward[2] < 0.6
    pushed = FAMILY.reward(obs[:1], torch.ones(1, 1), obs[:1])
    assert pushed[0] == pytest.approx(0.8)
    assert torch.all((reward >= 0) & (reward <= 1))


def test_leaving_the_rail_terminates(env):
    obs, rewards, terms = run_from(env, {"force": 15.0, "length": 0.5}, (0.0, math.pi, 0.0, 0.0), np.ones((200, 1)))
    assert terms[-1] and not terms[:-1].any(), "a constant push must end the episode once, at the rail's end"
    assert abs(obs[-1, 0]) > RAIL_LIMIT >= np.abs(obs[:-1, 0]).max()
    args = (torch.as_tensor(obs[:-1]), torch.ones(len(terms), 1, dtype=torch.float64), torch.as_tensor(obs[1:]))
    assert torch.equal(FAMILY.terminated(*args), torch.as_tensor(terms))
    torch.testing.assert_close(FAMILY.reward(*args), torch.as_tensor(rewards), rtol=0, atol=1e-12)


def test_starts_hanging(env):
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        assert obs[1] < -0.99 and abs(obs[0]) <= 0.05 and np.all(np.abs(obs[3:]) <= 0.05)


def test_splits_are_cadm():
    rng = np.random.default_rng(0)
    for task in FAMILY.sample(rng, 300, "train"):
        assert task["force"] in set(range(5, 16))
        assert any(math.isclose(task["length"], v) for v in (0.40, 0.45, 0.50, 0.55, 0.60))
    test = FAMILY.sample(rng, 400, "test")
    for task in test:
        assert 2.0 <= task["force"] <= 3.5 or 16.5 <= task["force"] <= 18.0
        assert 0.15 <= task["length"] <= 0.30 or 0.70 <= task["length"] <= 0.85
    # all four weak/strong × short/long regions are used
    corners = {(t["force"] > 10, t["length"] > 0.5) for t in test}
    assert len(corners) == 4
