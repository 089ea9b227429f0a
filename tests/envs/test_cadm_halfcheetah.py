"""CaDM's HalfCheetah and crippled HalfCheetah pinned to CaDM's code (cadm/envs/half_cheetah*_env.py, config.py).

Expected rewards are CaDM's formula evaluated here on the simulator's own positions; the parameter sets are CaDM's
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
from mbmeta.envs.locomotion.halfcheetah import without_settotalmass_warning
from mbmeta.envs.task_effect import check_task_effect

CHEETAH = get_family("cadm_halfcheetah")
CRIPPLED = get_family("cadm_crippled_halfcheetah")
JOINTS = ["bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"]


def values(family, split: str, parameter: str) -> set[float]:
    out: set[float] = set()
    for region in family.regions(split):
        assert isinstance(region[parameter], Choice)
        out |= set(region[parameter].values)
    return out


def nominal_model() -> mujoco.MjModel:
    """The unmodified HalfCheetah MJCF as Gymnasium ships it (built without mbmeta)."""
    with without_settotalmass_warning():
        env = gym.make("HalfCheetah-v5")
    model = env.unwrapped.model
    env.close()
    return model


def save_state(env) -> np.ndarray:
    model, data = env.unwrapped.model, env.unwrapped.data
    state = np.empty(mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_INTEGRATION))
    mujoco.mj_getState(model, data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
    return state


def step_from(env, state: np.ndarray, action) -> tuple[np.ndarray, float]:
    """One env step from a saved integration state (the velocity reference is that state's x)."""
    mujoco.mj_setState(env.unwrapped.model, env.unwrapped.data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
    mujoco.mj_forward(env.unwrapped.model, env.unwrapped.data)
    obs, reward, *_ = env.step(np.asarray(action, dtype=np.float32))
    return obs, reward


# ----- sets ------------------------------------------------------------------------------------------------------
def test_halfcheetah_sets_are_cadms():
    cadm_train = [0.75, 0.85, 1.0, 1.15, 1.25]
    assert values(CHEETAH, "train", "mass_scale") == set(cadm_train) == values(CHEETAH, "train", "damping_scale")
    cadm_test = [[[0.2, 0.3], [0.2, 0.3]], [[0.4, 0.5], [0.4, 0.5]], [[1.5, 1.6], [1.5, 1.6]], [[1.7, 1.8], [1.7, 1.8]]]
    assert [c.group for c in CHEETAH.conditions] == ["extreme", "moderate", "moderate", "extreme"]
    for condition, (masses, dampings) in zip(CHEETAH.conditions, cadm_test, strict=True):
        assert values(CHEETAH, condition.name, "mass_scale") == set(masses)
        assert values(CHEETAH, condition.name, "damping_scale") == set(dampings)
    assert CHEETAH.episode_steps == 1000 and CHEETAH.protocol_episodes == 10


def test_crippled_sets_are_cadms():
    rng = np.random.default_rng(0)
    crippled = lambda task: tuple(i for i, j in enumerate(JOINTS) if task[f"crippled_{j}"] == 1.0)  # noqa: E731
    # train: cripple_set [0, 1, 2, 3], one joint drawn uniformly per episode
    train = [crippled(t) for t in CRIPPLED.sample(rng, 2000, "train")]
    assert set(train) == {(0,), (1,), (2,), (3,)}
    assert min(train.count(k) for k in set(train)) > 400
    # test c0 (extreme_set [0]): one of joints 4, 5; c1 (extreme_set [1]): both (2 drawn from [4, 5])
    c0 = [crippled(t) for t in CRIPPLED.sample(rng, 400, "c0")]
    assert set(c0) == {(4,), (5,)} and min(c0.count((4,)), c0.count((5,))) > 150
    assert {crippled(t) for t in CRIPPLED.sample(rng, 50, "c1")} == {(4, 5)}
    assert [c.group for c in CRIPPLED.conditions] == ["moderate", "extreme"]
    assert CRIPPLED.episode_steps == 1000 and CRIPPLED.protocol_episodes == 20
    assert crippled(CRIPPLED.nominal()) == ()


def test_crippled_flags_must_be_0_or_1():
    with pytest.raises(ValueError, match="crippled_fshin"):
        CRIPPLED.validate({**CRIPPLED.nominal().as_dict(), "crippled_fshin": 0.5})
    with pytest.raises(ValueError, match="crippled_bthigh"):
        CRIPPLED.validate({**CRIPPLED.nominal().as_dict(), "crippled_bthigh": 2.0})


# ----- task application --------------------------------------------------------------------------------------------
def test_mass_and_damping_scale_body_mass_and_dof_damping_only():
    nominal = nominal_model()
    env = CHEETAH.make_env()
    env.unwrapped.task = {"mass_scale": 0.3, "damping_scale": 1.7}
    model = env.unwrapped.model
    np.testing.assert_array_equal(model.body_mass, nominal.body_mass * 0.3)
    np.testing.assert_array_equal(model.body_inertia, nominal.body_inertia)  # CaDM leaves the inertia
    np.testing.assert_array_equal(model.dof_damping, nominal.dof_damping * 1.7)
    assert nominal.dof_damping.max() > 0


@pytest.mark.parametrize("joint", range(6))
def test_a_crippled_joints_action_moves_nothing(joint):
    env = CRIPPLED.make_env()
    task = {f"crippled_{j}": float(i == joint) for i, j in enumerate(JOINTS)}
    env.reset(seed=0, options={"task": task})
    state = save_state(env)
    base = np.full(6, 0.3)
    changed, changed_other = base.copy(), base.copy()
    changed[joint] = -0.9
    changed_other[(joint + 1) % 6] = -0.9
    obs, _ = step_from(env, state, base)
    np.testing.assert_array_equal(step_from(env, state, changed)[0], obs)
    assert not np.allclose(step_from(env, state, changed_other)[0], obs)


# ----- observation, reward, start ------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", [CHEETAH, CRIPPLED], ids=lambda f: f.name)
def test_reward_is_velocity_minus_control_cost(family):
    env = family.make_env()
    rng = np.random.default_rng(1)
    task = family.sample(rng, 1, "test")[0]
    obs, _ = env.reset(seed=1, options={"task": task})
    assert obs[0] == 0.0  # CaDM sets prev_qpos at reset
    data = env.unwrapped.data
    for _ in range(20):
        action = rng.uniform(-1, 1, 6).astype(np.float32)
        x_before = float(data.qpos[0])
        next_obs, reward, terminated, truncated, _ = env.step(action)
        velocity = (float(data.qpos[0]) - x_before) / 0.05
        # CaDM: reward_run = ob[0]; reward_ctrl = -0.1 * sum(action²) (the crippled joints' included here)
        expected = velocity - 0.1 * float(np.square(action.astype(np.float64)).sum())
        assert reward == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert next_obs[0] == pytest.approx(velocity, rel=1e-12, abs=1e-12)
        np.testing.assert_array_equal(next_obs[1:9], data.qpos[1:])
        np.testing.assert_array_equal(next_obs[9:], data.qvel)
        assert not terminated and not truncated
        rows = [torch.as_tensor(x[None], dtype=torch.float64) for x in (obs, action, next_obs)]
        assert family.reward(*rows).item() == pytest.approx(expected, rel=1e-9, abs=1e-9)
        obs = next_obs


def test_actions_beyond_the_box_are_clipped_as_cadm_does():
    env = CHEETAH.make_env()
    env.reset(seed=2)
    state = save_state(env)
    inside = np.array([1.0, -1.0, 0.5, 1.0, -0.2, -1.0])
    outside = np.array([3.0, -2.0, 0.5, 1.7, -0.2, -9.0])
    obs_in, reward_in = step_from(env, state, inside)
    obs_out, reward_out = step_from(env, state, outside)
    np.testing.assert_array_equal(obs_in, obs_out)
    assert reward_in == reward_out


def test_start_noise_is_cadms_gaussian_of_std_0_001():
    env = CHEETAH.make_env()
    init_qpos, init_qvel = env.unwrapped.init_qpos, env.unwrapped.init_qvel
    deviations = []
    for seed in range(200):
        env.reset(seed=seed)
        deviations.append(np.concatenate([env.unwrapped.data.qpos - init_qpos, env.unwrapped.data.qvel - init_qvel]))
    deviations = np.array(deviations)
    assert 0.0009 < deviations.std() < 0.0011
    assert abs(deviations.mean()) < 1e-4


def test_timing_and_episode_length():
    env = CHEETAH.make_env()
    assert env.unwrapped.dt == pytest.approx(0.05) and env.unwrapped.frame_skip == 5
    assert env.spec.max_episode_steps == 1000


# ----- the tasks change the physics ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("family", "a", "b"), [(CHEETAH, "c0", "c3"), (CRIPPLED, "c0", "c1")], ids=["scales", "cripple"]
)
def test_two_tasks_differ_from_the_same_state_and_action(family, a, b):
    env = family.make_env()
    env.reset(seed=3)
    state = save_state(env)
    action = np.full(6, 0.8)
    nexts = []
    for condition in (a, b):
        env.unwrapped.task = family.sample(np.random.default_rng(0), 1, condition)[0]
        nexts.append(step_from(env, state, action)[0])
    assert np.abs(nexts[0] - nexts[1]).max() > 1e-3
    assert all(effect.measurable for effect in check_task_effect(family))
