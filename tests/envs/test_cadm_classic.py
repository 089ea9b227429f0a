"""CaDM's Pendulum and CartPole pinned to CaDM's code (cadm/envs/classic_control.py, cadm/envs/config.py, gym 0.16).

Expected values are computed here from CaDM's formulas, written out term by term, on fixed transitions; the
parameter sets are CaDM's lists copied from its config. The generic family contract is in test_families.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mbmeta.envs import get_family
from mbmeta.envs.family import Choice
from mbmeta.envs.task_effect import check_task_effect

PENDULUM = get_family("cadm_pendulum")
CARTPOLE = get_family("cadm_cartpole")


def values(family, condition: str, parameter: str) -> set[float]:
    """The values a condition (or split) allows for one parameter, over its regions."""
    out: set[float] = set()
    for region in family.regions(condition):
        assert isinstance(region[parameter], Choice), "CaDM's sets are discrete"
        out |= set(region[parameter].values)
    return out


def step(env, action):
    obs, reward, terminated, truncated, _ = env.step(np.asarray(action, dtype=np.float32))
    return obs, reward, terminated, truncated


# ----- Pendulum ----------------------------------------------------------------------------------------------------
def test_pendulum_sets_are_cadms():
    cadm_train = [0.75, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.20, 1.25]
    assert values(PENDULUM, "train", "mass") == set(cadm_train) == values(PENDULUM, "train", "length")
    # config['test_range'] = [[mass set, length set], ...], each evaluated as its own condition
    cadm_test = [[[0.2, 0.4], [1.6, 1.8]], [[0.5, 0.7], [1.3, 1.5]], [[1.3, 1.5], [0.5, 0.7]], [[1.6, 1.8], [0.2, 0.4]]]
    assert [c.name for c in PENDULUM.conditions] == ["c0", "c1", "c2", "c3"]
    assert [c.group for c in PENDULUM.conditions] == ["extreme", "moderate", "moderate", "extreme"]
    for condition, (masses, lengths) in zip(PENDULUM.conditions, cadm_test, strict=True):
        assert len(condition.regions) == 1  # mass and length drawn independently within the condition
        assert values(PENDULUM, condition.name, "mass") == set(masses)
        assert values(PENDULUM, condition.name, "length") == set(lengths)
    assert PENDULUM.test == tuple(r for c in PENDULUM.conditions for r in c.regions)
    assert PENDULUM.episode_steps == 200 and PENDULUM.protocol_episodes == 10  # max_path_length, total_test


def cadm_pendulum_step(theta, theta_dot, a, m, l):  # noqa: E741  (l: CaDM's name for the length)
    """CaDM's ModifiablePendulumEnv.step behind NormalizedEnv, written out: returns (θ', θdot', reward)."""
    u = float(np.clip(-2.0 + (a + 1.0) * 4.0 / 2.0, -2.0, 2.0))
    normalised = ((theta + np.pi) % (2 * np.pi)) - np.pi
    cost = normalised**2 + 0.1 * theta_dot**2 + 0.001 * (u / 2.0) ** 2
    new_theta_dot = theta_dot + (-3 * 10.0 / (2 * l) * np.sin(theta + np.pi) + 3.0 / (m * l**2) * u) * 0.05
    new_theta = theta + new_theta_dot * 0.05
    new_theta_dot = float(np.clip(new_theta_dot, -8, 8))
    return new_theta, new_theta_dot, -cost


@pytest.mark.parametrize(
    ("theta", "theta_dot", "a", "task"),
    [
        (2.0, -1.5, 0.6, {"mass": 0.5, "length": 1.3}),
        (-0.3, 0.7, -0.25, {"mass": 1.05, "length": 0.8}),
        (7.5, 7.9, 1.0, {"mass": 0.2, "length": 0.2}),  # unwrapped θ, and θdot' beyond the ±8 clip
    ],
)
def test_pendulum_step_is_cadms(theta, theta_dot, a, task):
    env = PENDULUM.make_env()
    env.reset(seed=0, options={"task": task})
    env.unwrapped.set_state(np.array([theta]), np.array([theta_dot]))
    obs_before = env.unwrapped._get_obs()
    obs, reward, terminated, truncated = step(env, [a])
    a = float(np.float32(a))  # the action the env received
    new_theta, new_theta_dot, expected = cadm_pendulum_step(theta, theta_dot, a, task["mass"], task["length"])
    assert reward == pytest.approx(expected, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(obs, [math.cos(new_theta), math.sin(new_theta), new_theta_dot], rtol=1e-12, atol=1e-12)
    assert not terminated and not truncated
    family_reward = PENDULUM.reward(
        *(torch.as_tensor(np.array([x]), dtype=torch.float64) for x in (obs_before, [a], obs))
    )
    assert family_reward.item() == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_pendulum_theta_uses_the_unclipped_velocity():
    # θ' = θ + θdot'·dt with θdot' before the ±8 clip, as gym 0.16 (a clipped θdot' would give 0.4 here)
    env = PENDULUM.make_env()
    env.reset(seed=0, options={"task": {"mass": 0.2, "length": 0.2}})
    env.unwrapped.set_state(np.array([0.0]), np.array([7.9]))
    obs, *_ = step(env, [1.0])
    assert obs[2] == 8.0
    unclipped = 7.9 + (3.0 / (0.2 * 0.04) * 2.0) * 0.05
    assert math.atan2(obs[1], obs[0]) == pytest.approx(unclipped * 0.05, abs=1e-12)


def test_pendulum_actions_are_normalised_and_clipped():
    env = PENDULUM.make_env()
    outs = []
    for a in ([1.0], [3.0]):
        env.reset(seed=4, options={"task": {"mass": 1.0, "length": 1.0}})
        outs.append(step(env, a)[:2])
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    assert outs[0][1] == outs[1][1]
    assert env.action_space.low.tolist() == [-1.0] and env.action_space.high.tolist() == [1.0]


def test_pendulum_starts_hanging_within_an_eighth_turn():
    env = PENDULUM.make_env()
    thetas, speeds = [], []
    for seed in range(400):
        obs, _ = env.reset(seed=seed)
        thetas.append(math.atan2(obs[1], obs[0]))
        speeds.append(obs[2])
    thetas, speeds = np.abs(thetas), np.array(speeds)
    assert thetas.min() >= 7 / 8 * math.pi - 1e-12 and thetas.min() < 7 / 8 * math.pi + 0.02
    assert np.abs(speeds).max() <= 0.2 and np.abs(speeds).max() > 0.19
    assert thetas.max() > math.pi - 0.02  # spread over the whole ±π/8 arc around hanging


def test_pendulum_never_terminates_within_its_episode():
    env = PENDULUM.make_env()
    env.reset(seed=0, options={"task": {"mass": 0.4, "length": 1.8}})
    rng = np.random.default_rng(0)
    for t in range(200):
        _, _, terminated, truncated = step(env, rng.uniform(-1, 1, 1))
        assert not terminated
        assert truncated == (t == 199)


def test_pendulum_tasks_change_the_dynamics():
    env = PENDULUM.make_env()
    nexts = []
    for condition in ("c0", "c3"):
        task = PENDULUM.sample(np.random.default_rng(0), 1, condition)[0]
        env.reset(seed=0, options={"task": task})
        env.unwrapped.set_state(np.array([2.5]), np.array([0.5]))
        nexts.append(step(env, [0.5])[0])
    assert np.abs(nexts[0] - nexts[1]).max() > 1e-3
    assert all(effect.measurable for effect in check_task_effect(PENDULUM))


# ----- CartPole ----------------------------------------------------------------------------------------------------
def test_cartpole_sets_are_cadms():
    assert values(CARTPOLE, "train", "force") == {5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0}
    assert values(CARTPOLE, "train", "length") == {0.4, 0.45, 0.5, 0.55, 0.6}
    cadm_test = [
        [[2.0, 2.5], [0.15, 0.20]],
        [[3.0, 3.5], [0.25, 0.3]],
        [[16.5, 17.0], [0.7, 0.75]],
        [[17.5, 18.0], [0.80, 0.85]],
    ]
    assert [c.group for c in CARTPOLE.conditions] == ["extreme", "moderate", "moderate", "extreme"]
    for condition, (forces, lengths) in zip(CARTPOLE.conditions, cadm_test, strict=True):
        assert values(CARTPOLE, condition.name, "force") == set(forces)
        assert values(CARTPOLE, condition.name, "length") == set(lengths)
    assert CARTPOLE.episode_steps == 200 and CARTPOLE.protocol_episodes == 10


def gym_cartpole_step(state, push_right, force, length):
    """gym 0.16 CartPoleEnv.step (Euler integrator), written out."""
    x, x_dot, theta, theta_dot = state
    f = force if push_right else -force
    total, polemass_length = 1.1, 0.1 * length
    temp = (f + polemass_length * theta_dot**2 * math.sin(theta)) / total
    theta_acc = (9.8 * math.sin(theta) - math.cos(theta) * temp) / (
        length * (4.0 / 3.0 - 0.1 * math.cos(theta) ** 2 / total)
    )
    x_acc = temp - polemass_length * theta_acc * math.cos(theta) / total
    return [x + 0.02 * x_dot, x_dot + 0.02 * x_acc, theta + 0.02 * theta_dot, theta_dot + 0.02 * theta_acc]


def set_cartpole(env, state):
    x, x_dot, theta, theta_dot = state
    env.unwrapped.set_state(np.array([x, theta]), np.array([x_dot, theta_dot]))


@pytest.mark.parametrize(
    ("state", "a", "task"),
    [
        ((0.1, -0.2, 0.05, 0.3), 0.7, {"force": 7.0, "length": 0.45}),
        ((-1.0, 0.5, -0.1, -0.8), -0.2, {"force": 17.5, "length": 0.85}),
        ((0.0, 0.0, 0.0, 0.0), 0.0, {"force": 2.0, "length": 0.15}),  # a = 0 is gym's action 0: push left
    ],
)
def test_cartpole_step_is_gyms(state, a, task):
    env = CARTPOLE.make_env()
    env.reset(seed=0, options={"task": task})
    set_cartpole(env, state)
    obs, reward, terminated, _ = step(env, [a])
    expected = gym_cartpole_step(state, a > 0, task["force"], task["length"])
    np.testing.assert_allclose(obs, expected, rtol=1e-12, atol=1e-14)
    assert reward == 1.0 and not terminated


def test_cartpole_action_sign_selects_the_push():
    env = CARTPOLE.make_env()
    outs = {}
    for a in (-1.0, -0.3, 0.0, 1e-3, 0.4, 1.0):
        env.reset(seed=1, options={"task": {"force": 9.0, "length": 0.5}})
        outs[a] = step(env, [a])[0]
    for a in (-0.3, 0.0):
        np.testing.assert_array_equal(outs[a], outs[-1.0])
    for a in (1e-3, 0.4):
        np.testing.assert_array_equal(outs[a], outs[1.0])
    assert not np.allclose(outs[1.0], outs[-1.0])


@pytest.mark.parametrize(
    ("state", "a"),
    [
        ((2.39, 1.0, 0.0, 0.0), 1.0),  # x' = 2.41 > 2.4
        ((-2.39, -1.0, 0.0, 0.0), -1.0),  # x' = -2.41
        ((0.0, 0.0, 0.2, 1.0), 1.0),  # θ' = 0.22 > 12° = 0.2094
        ((0.0, 0.0, -0.2, -1.0), -1.0),
    ],
)
def test_cartpole_fails_like_gym_and_counts_the_failing_step(state, a):
    env = CARTPOLE.make_env()
    env.reset(seed=0, options={"task": {"force": 10.0, "length": 0.5}})
    set_cartpole(env, state)
    before = np.array(state)
    obs, reward, terminated, _ = step(env, [a])
    assert terminated and reward == 1.0  # gym: reward 1 on the step the pole falls
    obs_after, reward_after, terminated_after, _ = step(env, [a])  # gym: 0 for steps after that
    assert terminated_after and reward_after == 0.0
    rows = [torch.as_tensor(np.array(x), dtype=torch.float64) for x in ([before, obs], [[a], [a]], [obs, obs_after])]
    assert CARTPOLE.reward(*rows).tolist() == [1.0, 0.0]
    assert CARTPOLE.terminated(*rows).tolist() == [True, True]


def test_cartpole_inside_the_bounds_is_not_terminal():
    rows = torch.tensor([[2.4, 0.0, 12 * 2 * math.pi / 360, 0.0], [-2.4, 0.0, -12 * 2 * math.pi / 360, 0.0]])
    action = torch.zeros(2, 1)
    assert CARTPOLE.terminated(rows, action, rows).tolist() == [False, False]
    assert CARTPOLE.reward(rows, action, rows).tolist() == [1.0, 1.0]


def test_cartpole_starts_uniform_in_a_small_box():
    env = CARTPOLE.make_env()
    starts = np.array([env.reset(seed=seed)[0] for seed in range(300)])
    assert np.abs(starts).max() <= 0.05
    assert (np.abs(starts).max(axis=0) > 0.045).all()  # every variable spans the box


def test_cartpole_tasks_change_the_dynamics():
    env = CARTPOLE.make_env()
    nexts = []
    for condition in ("c0", "c3"):
        env.reset(seed=0, options={"task": CARTPOLE.sample(np.random.default_rng(0), 1, condition)[0]})
        set_cartpole(env, (0.0, 0.1, 0.05, -0.1))
        nexts.append(step(env, [1.0])[0])
    assert np.abs(nexts[0] - nexts[1]).max() > 1e-3
    assert all(effect.measurable for effect in check_task_effect(CARTPOLE))
