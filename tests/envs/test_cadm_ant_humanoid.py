"""CaDM's Ant and SlimHumanoid pinned to CaDM's code (cadm/envs/ant_env.py, slim_humanoid_env.py, config.py).

Expected rewards are CaDM's formulas evaluated here on the simulator's own state; the parameter sets are CaDM's
lists copied from its config. The generic family contract is in test_families.py.
"""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import torch

from mbmeta.envs import get_family
from mbmeta.envs.family import Choice
from mbmeta.envs.task_effect import check_task_effect

ANT = get_family("cadm_ant")
HUMANOID = get_family("cadm_slim_humanoid")


def values(family, split: str, parameter: str) -> set[float]:
    out: set[float] = set()
    for region in family.regions(split):
        assert isinstance(region[parameter], Choice)
        out |= set(region[parameter].values)
    return out


def nominal_model(env_id: str) -> mujoco.MjModel:
    env = gym.make(env_id)
    model = env.unwrapped.model
    env.close()
    return model


def save_state(env) -> np.ndarray:
    model, data = env.unwrapped.model, env.unwrapped.data
    state = np.empty(mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_INTEGRATION))
    mujoco.mj_getState(model, data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
    return state


def step_from(env, state: np.ndarray, action) -> np.ndarray:
    mujoco.mj_setState(env.unwrapped.model, env.unwrapped.data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
    mujoco.mj_forward(env.unwrapped.model, env.unwrapped.data)
    return env.step(np.asarray(action, dtype=np.float32))[0]


# ----- Ant ---------------------------------------------------------------------------------------------------------
def test_ant_sets_are_cadms():
    assert values(ANT, "train", "leg_mass_scale") == {0.85, 0.9, 0.95, 1.0}
    cadm_test = [[0.2, 0.25, 0.3, 0.35, 0.4], [0.4, 0.45, 0.5, 0.55, 0.6]]  # the damping sets are [1.0]
    assert [c.group for c in ANT.conditions] == ["extreme", "moderate"]
    for condition, masses in zip(ANT.conditions, cadm_test, strict=True):
        assert values(ANT, condition.name, "leg_mass_scale") == set(masses)
    assert ANT.episode_steps == 1000 and ANT.protocol_episodes == 20  # total_test = 20 for the ant


def test_ant_leg_masses_scale_as_cadms_body_slices():
    nominal = nominal_model("Ant-v5")
    env = ANT.make_env()
    s = 0.35
    env.unwrapped.task = {"leg_mass_scale": s}
    model = env.unwrapped.model
    expected = nominal.body_mass.copy()
    expected[2:5] *= s  # CaDM: mass[2:5] *= s; mass[5:8] *= s; mass[8:11] *= 1/s; mass[11:14] *= 1/s
    expected[5:8] *= s
    expected[8:11] *= 1.0 / s
    expected[11:14] *= 1.0 / s
    np.testing.assert_allclose(model.body_mass, expected, rtol=1e-15)
    np.testing.assert_array_equal(model.body_inertia, nominal.body_inertia)
    np.testing.assert_array_equal(model.dof_damping, nominal.dof_damping)
    assert [model.body(i).name for i in (2, 5, 8, 11)] == [
        "front_left_leg",
        "front_right_leg",
        "back_leg",
        "right_back_leg",
    ]


def test_ant_reward_is_torso_velocity_minus_control_plus_survival():
    env = ANT.make_env()
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0, options={"task": {"leg_mass_scale": 0.5}})
    assert obs[0] == 0.0
    data = env.unwrapped.data
    torso = env.unwrapped.model.body("torso").id
    for _ in range(20):
        action = rng.uniform(-1, 1, 8).astype(np.float32)
        x_before = float(data.xpos[torso, 0])
        next_obs, reward, terminated, truncated, _ = env.step(action)
        velocity = (float(data.xpos[torso, 0]) - x_before) / 0.05
        expected = velocity - 0.005 * float(np.square(action.astype(np.float64)).sum()) + 0.0 + 0.05
        assert reward == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert next_obs[0] == pytest.approx(velocity, rel=1e-12, abs=1e-12)
        np.testing.assert_array_equal(next_obs[1:14], data.qpos[2:])
        np.testing.assert_array_equal(next_obs[14:], data.qvel)
        assert not terminated and not truncated
        rows = [torch.as_tensor(x[None], dtype=torch.float64) for x in (obs, action, next_obs)]
        assert ANT.reward(*rows).item() == pytest.approx(expected, rel=1e-9, abs=1e-9)
        obs = next_obs


def test_ant_never_terminates_even_upside_down():
    env = ANT.make_env()
    env.reset(seed=0)
    qpos = env.unwrapped.data.qpos.copy()
    qpos[2], qpos[3:7] = 0.3, [0.0, 1.0, 0.0, 0.0]  # flipped over, torso low: unhealthy for Gymnasium's Ant
    env.unwrapped.set_state(qpos, env.unwrapped.data.qvel.copy())
    for _ in range(30):
        _, reward, terminated, _, _ = env.step(np.zeros(8, dtype=np.float32))
        assert not terminated
    assert reward == pytest.approx(env.unwrapped._get_obs()[0] + 0.05, abs=1e-12)


def test_ant_start_noise_is_cadms():
    env = ANT.make_env()
    init_qpos, init_qvel = env.unwrapped.init_qpos, env.unwrapped.init_qvel
    qpos, qvel = [], []
    for seed in range(200):
        env.reset(seed=seed)
        qpos.append(env.unwrapped.data.qpos - init_qpos)
        qvel.append(env.unwrapped.data.qvel - init_qvel)
    qpos, qvel = np.array(qpos), np.array(qvel)
    assert np.abs(qpos).max() <= 0.1 and np.abs(qpos).max() > 0.099  # U(-0.1, 0.1)
    assert 0.09 < qvel.std() < 0.11 and np.abs(qvel).max() > 0.25  # 0.1 N(0, 1)


def test_ant_tasks_change_the_dynamics():
    env = ANT.make_env()
    env.reset(seed=1)
    state = save_state(env)
    nexts = []
    for s in (0.2, 0.6):
        env.unwrapped.task = {"leg_mass_scale": s}
        nexts.append(step_from(env, state, np.full(8, 0.7)))
    assert np.abs(nexts[0] - nexts[1]).max() > 1e-3
    assert all(effect.measurable for effect in check_task_effect(ANT))


# ----- SlimHumanoid ------------------------------------------------------------------------------------------------
def test_humanoid_sets_are_cadms():
    cadm_train = [0.8, 0.9, 1.0, 1.15, 1.25]
    assert values(HUMANOID, "train", "mass_scale") == set(cadm_train) == values(HUMANOID, "train", "damping_scale")
    cadm_test = [[[0.4, 0.5], [0.4, 0.5]], [[0.6, 0.7], [0.6, 0.7]], [[1.5, 1.6], [1.5, 1.6]], [[1.7, 1.8], [1.7, 1.8]]]
    assert [c.group for c in HUMANOID.conditions] == ["extreme", "moderate", "moderate", "extreme"]
    for condition, (masses, dampings) in zip(HUMANOID.conditions, cadm_test, strict=True):
        assert values(HUMANOID, condition.name, "mass_scale") == set(masses)
        assert values(HUMANOID, condition.name, "damping_scale") == set(dampings)
    assert HUMANOID.episode_steps == 1000 and HUMANOID.protocol_episodes == 10


def test_humanoid_mass_and_damping_scale_body_mass_and_dof_damping_only():
    nominal = nominal_model("Humanoid-v5")
    env = HUMANOID.make_env()
    env.unwrapped.task = {"mass_scale": 0.4, "damping_scale": 1.8}
    model = env.unwrapped.model
    np.testing.assert_array_equal(model.body_mass, nominal.body_mass * 0.4)
    np.testing.assert_array_equal(model.body_inertia, nominal.body_inertia)
    np.testing.assert_array_equal(model.dof_damping, nominal.dof_damping * 1.8)


def test_humanoid_reward_uses_the_velocity_before_the_step_and_the_height_after():
    env = HUMANOID.make_env()
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0, options={"task": {"mass_scale": 0.6, "damping_scale": 1.6}})
    data = env.unwrapped.data
    alive_seen = dead_seen = False
    for t in range(40):
        action = rng.uniform(-1, 1, 17).astype(np.float32)
        if t == 20:  # drop the torso below 1 m: no alive bonus, and still no termination
            qpos = data.qpos.copy()
            qpos[2] = 0.6
            env.unwrapped.set_state(qpos, data.qvel.copy())
            obs = env.unwrapped._get_obs()
        velocity_before = float(data.qvel[0])
        next_obs, reward, terminated, truncated, _ = env.step(action)
        # NormalizedEnv: lb + (a + 1) (ub - lb) / 2 with the actuators' ctrlrange ±0.4
        np.testing.assert_array_equal(data.ctrl, -0.4 + (action.astype(np.float64) + 1.0) * 0.8 / 2.0)
        alive = 1.0 <= data.qpos[2] <= 2.0
        alive_seen, dead_seen = alive_seen or alive, dead_seen or not alive
        # CaDM: 0.25 / 0.015 * old_obs[22] - 0.1 * sum(ctrl²) + 5 * (1 - done), done = z < 1 or z > 2
        expected = 0.25 / 0.015 * velocity_before - 0.1 * float(np.square(data.ctrl).sum()) + 5.0 * float(alive)
        assert reward == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert obs[22] == velocity_before
        np.testing.assert_array_equal(next_obs, np.concatenate([data.qpos[2:], data.qvel]))
        assert not terminated and not truncated
        rows = [torch.as_tensor(x[None], dtype=torch.float64) for x in (obs, action, next_obs)]
        assert HUMANOID.reward(*rows).item() == pytest.approx(expected, rel=1e-9, abs=1e-9)
        obs = next_obs
    assert alive_seen and dead_seen


def test_humanoid_start_noise_is_cadms():
    env = HUMANOID.make_env()
    init = np.concatenate([env.unwrapped.init_qpos, env.unwrapped.init_qvel])
    deviations = []
    for seed in range(100):
        env.reset(seed=seed)
        deviations.append(np.concatenate([env.unwrapped.data.qpos, env.unwrapped.data.qvel]) - init)
    deviations = np.abs(np.array(deviations))
    assert deviations.max() <= 0.01 and deviations.max() > 0.0099  # U(-0.01, 0.01)
    assert env.unwrapped.dt == pytest.approx(0.015)


def test_humanoid_tasks_change_the_dynamics():
    env = HUMANOID.make_env()
    env.reset(seed=1)
    state = save_state(env)
    nexts = []
    for condition in ("c0", "c3"):
        env.unwrapped.task = HUMANOID.sample(np.random.default_rng(0), 1, condition)[0]
        nexts.append(step_from(env, state, np.full(17, 0.5)))
    assert np.abs(nexts[0] - nexts[1]).max() > 1e-3
    assert all(effect.measurable for effect in check_task_effect(HUMANOID))
