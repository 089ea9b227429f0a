"""Family-specific tests of the locomotion families (the generic contract is in test_families.py).

Nominal values come from Gymnasium's own environments, built independently of mbmeta, so a wrong "nominal" copy
would be caught as well as a wrong scaling.
"""

from __future__ import annotations

import pickle

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import torch

import mbmeta.envs
from mbmeta.envs import get_family
from mbmeta.envs.locomotion.halfcheetah import without_settotalmass_warning

# Gymnasium arguments that give the bare env the observation layout and reward of ours (minus the x-velocity).
SLIM_ANT = dict(include_cfrc_ext_in_observation=False, contact_cost_weight=0.0)
SLIM_HUMANOID = dict(
    include_cinert_in_observation=False,
    include_cvel_in_observation=False,
    include_qfrc_actuator_in_observation=False,
    include_cfrc_ext_in_observation=False,
    contact_cost_weight=0.0,
)
LOCOMOTION = [
    "halfcheetah_mass",
    "halfcheetah_damping",
    "crippled_halfcheetah",
    "hopper_mass",
    "ant_leg_mass",
    "crippled_ant",
    "slim_humanoid",
]
BARE_KWARGS = {"Ant-v5": SLIM_ANT, "Humanoid-v5": SLIM_HUMANOID}


def make(name: str, **kwargs) -> gym.Env:
    return get_family(name).make_env(**kwargs)


def make_bare(env_id: str) -> gym.Env:
    """Gymnasium's own env, with our obs/reward flags; quiet (HalfCheetah-v5 would log to MUJOCO_LOG.TXT)."""
    with without_settotalmass_warning():
        return gym.make(env_id, **BARE_KWARGS.get(env_id, {}))


def bare_model(name: str) -> mujoco.MjModel:
    env = make_bare(get_family(name).bare_env_id)
    model = env.unwrapped.model
    env.close()
    return model


def body_ids(model: mujoco.MjModel, names: list[str]) -> list[int]:
    return [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, n) for n in names]


def actuator_of_joint(model: mujoco.MjModel, joint: str) -> int:
    jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, joint)
    return int(np.flatnonzero(model.actuator_trnid[:, 0] == jid)[0])


def save_state(env: gym.Env) -> np.ndarray:
    model, data = env.unwrapped.model, env.unwrapped.data
    state = np.empty(mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_INTEGRATION))
    mujoco.mj_getState(model, data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
    return state


def step_from_state(env: gym.Env, state: np.ndarray, action: np.ndarray) -> np.ndarray:
    """One env step from a saved full integration state (incl. the solver's warm start), so it is reproducible."""
    mujoco.mj_setState(env.unwrapped.model, env.unwrapped.data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
    mujoco.mj_forward(env.unwrapped.model, env.unwrapped.data)
    return env.step(action)[0]


def rollout(env: gym.Env, task: dict, seed: int, steps: int) -> np.ndarray:
    obs, _ = env.reset(seed=seed, options={"task": task})
    rng = np.random.default_rng(seed)
    out = [obs]
    for _ in range(steps):
        obs, _, terminated, _, _ = env.step(rng.uniform(-1, 1, env.action_space.shape))
        out.append(obs)
        if terminated:
            break
    return np.array(out)


# ----- scaled arrays ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "scale"), [("halfcheetah_mass", 0.3), ("hopper_mass", 1.75), ("slim_humanoid", 1.6)])
def test_mass_scale_multiplies_every_body_mass_and_inertia(name, scale):
    nominal = bare_model(name)
    env = make(name)
    task = {p: (scale if p == "mass_scale" else 1.0) for p in get_family(name).parameter_names}
    env.unwrapped.task = task
    model = env.unwrapped.model
    np.testing.assert_array_equal(model.body_mass, nominal.body_mass * scale)
    np.testing.assert_array_equal(model.body_inertia, nominal.body_inertia * scale)
    np.testing.assert_array_equal(model.dof_damping, nominal.dof_damping)
    assert mujoco.mj_getTotalmass(model) == pytest.approx(scale * mujoco.mj_getTotalmass(nominal))


@pytest.mark.parametrize(
    ("name", "scale"), [("halfcheetah_damping", 1.7), ("halfcheetah_damping", 0.0), ("slim_humanoid", 0.4)]
)
def test_damping_scale_multiplies_every_joint_damping(name, scale):
    nominal = bare_model(name)
    env = make(name)
    task = {p: (scale if p == "damping_scale" else 1.0) for p in get_family(name).parameter_names}
    env.unwrapped.task = task
    model = env.unwrapped.model
    assert nominal.dof_damping.max() > 0
    np.testing.assert_array_equal(model.dof_damping, nominal.dof_damping * scale)
    np.testing.assert_array_equal(model.body_mass, nominal.body_mass)


def test_slim_humanoid_scales_mass_and_damping_together():
    nominal = bare_model("slim_humanoid")
    env = make("slim_humanoid")
    env.unwrapped.task = {"mass_scale": 0.5, "damping_scale": 1.8}
    model = env.unwrapped.model
    np.testing.assert_array_equal(model.body_mass, nominal.body_mass * 0.5)
    np.testing.assert_array_equal(model.dof_damping, nominal.dof_damping * 1.8)


def test_ant_leg_mass_scales_front_legs_by_s_and_back_legs_by_inverse():
    nominal = bare_model("ant_leg_mass")
    env = make("ant_leg_mass")
    s = 0.35
    env.unwrapped.task = {"leg_mass_scale": s}
    model = env.unwrapped.model
    # leg k: its attachment body, its aux body and the (unnamed) shin body under aux
    legs = [
        ["front_left_leg", "aux_1"],
        ["front_right_leg", "aux_2"],
        ["back_leg", "aux_3"],
        ["right_back_leg", "aux_4"],
    ]
    expected = nominal.body_mass.copy()
    expected_inertia = nominal.body_inertia.copy()
    for k, names in enumerate(legs):
        ids = body_ids(model, names)
        shin = [b for b in range(model.nbody) if model.body_parentid[b] == ids[1]]
        assert len(shin) == 1
        factor = s if k < 2 else 1.0 / s
        expected[ids + shin] = nominal.body_mass[ids + shin] * factor
        expected_inertia[ids + shin] = nominal.body_inertia[ids + shin] * factor
    np.testing.assert_array_equal(model.body_mass, expected)
    np.testing.assert_array_equal(model.body_inertia, expected_inertia)
    torso = body_ids(model, ["torso"])[0]
    assert model.body_mass[torso] == nominal.body_mass[torso]


# ----- crippling -------------------------------------------------------------------------------------------------
CHEETAH_JOINTS = ["bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"]


@pytest.mark.parametrize("joint", range(6))
def test_crippled_cheetah_joint_actuator_has_no_effect(joint):
    env = make("crippled_halfcheetah")
    env.reset(seed=0, options={"task": {"crippled_joint": joint}})
    model, nominal = env.unwrapped.model, bare_model("crippled_halfcheetah")
    actuator = actuator_of_joint(model, CHEETAH_JOINTS[joint])
    assert actuator == joint
    gear = nominal.actuator_gear.copy()
    gear[actuator] = 0.0
    np.testing.assert_array_equal(model.actuator_gear, gear)

    state = save_state(env)
    base = np.full(6, 0.3)
    other_joint = (joint + 1) % 6
    changed, changed_other = base.copy(), base.copy()
    changed[joint] = -0.9
    changed_other[other_joint] = -0.9
    obs = step_from_state(env, state, base)
    np.testing.assert_array_equal(step_from_state(env, state, changed), obs)
    assert not np.allclose(step_from_state(env, state, changed_other), obs)

    env.unwrapped.task = {"crippled_joint": -1}  # intact: the same action entry moves the robot again
    np.testing.assert_array_equal(model.actuator_gear, nominal.actuator_gear)
    assert not np.allclose(step_from_state(env, state, changed), step_from_state(env, state, base))


@pytest.mark.parametrize("leg", range(4))
def test_crippled_ant_leg_actuators_have_no_effect(leg):
    env = make("crippled_ant")
    env.reset(seed=0, options={"task": {"crippled_leg": leg}})
    model = env.unwrapped.model
    dead = [actuator_of_joint(model, f"{j}_{leg + 1}") for j in ("hip", "ankle")]
    assert (model.actuator_gear[dead] == 0).all()
    alive = [a for a in range(model.nu) if a not in dead]
    np.testing.assert_array_equal(model.actuator_gear[alive], bare_model("crippled_ant").actuator_gear[alive])

    state = save_state(env)
    base = np.full(8, 0.2)
    changed, changed_alive = base.copy(), base.copy()
    changed[dead] = [-1.0, 1.0]
    changed_alive[alive[:2]] = [-1.0, 1.0]
    obs = step_from_state(env, state, base)
    np.testing.assert_array_equal(step_from_state(env, state, changed), obs)
    assert not np.allclose(step_from_state(env, state, changed_alive), obs)


def test_crippled_limb_is_coloured_and_colour_resets():
    env = make("crippled_halfcheetah")
    model, nominal = env.unwrapped.model, bare_model("crippled_halfcheetah")
    env.unwrapped.task = {"crippled_joint": 4}
    fshin = body_ids(model, ["fshin"])[0]
    recoloured = np.flatnonzero((model.geom_rgba != nominal.geom_rgba).any(1))
    assert recoloured.size > 0 and (model.geom_bodyid[recoloured] == fshin).all()
    env.unwrapped.task = {"crippled_joint": 0}
    assert (model.geom_rgba[model.geom_bodyid == fshin] == nominal.geom_rgba[model.geom_bodyid == fshin]).all()


@pytest.mark.parametrize(
    ("name", "bad"), [("crippled_halfcheetah", 6), ("crippled_halfcheetah", 1.5), ("crippled_ant", 4)]
)
def test_crippled_index_out_of_range_raises(name, bad):
    family = get_family(name)
    with pytest.raises(ValueError, match=family.parameter_names[0]):
        family.validate({family.parameter_names[0]: bad})
    env = make(name)
    with pytest.raises(ValueError, match=family.parameter_names[0]):
        env.reset(options={"task": {family.parameter_names[0]: bad}})


def test_crippled_nominal_is_the_intact_robot_and_in_no_split():
    for name in ("crippled_halfcheetah", "crippled_ant"):
        family = get_family(name)
        nominal = family.nominal()
        assert nominal.as_array().tolist() == [-1.0]
        assert not family.in_split(nominal, "train") and not family.in_split(nominal, "test")
        env = make(name)
        np.testing.assert_array_equal(env.unwrapped.model.actuator_gear, bare_model(name).actuator_gear)


# ----- switching tasks -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["halfcheetah_mass", "crippled_halfcheetah", "ant_leg_mass", "hopper_mass"])
def test_switching_tasks_matches_a_fresh_env_built_with_the_task(name):
    family = get_family(name)
    rng = np.random.default_rng(0)
    a, b = family.sample(rng, 1, "train")[0], family.sample(rng, 1, "test")[0]
    switched = make(name)
    for task in (a, b, a, a):
        switched.reset(seed=1, options={"task": task})
    fresh = make(name, task=a)  # the constructor argument, never switched
    np.testing.assert_array_equal(rollout(switched, a.as_dict(), 3, 40), rollout(fresh, a.as_dict(), 3, 40))


# ----- the parameters change the physics ------------------------------------------------------------------------
def mean_joint_speed(name: str, task: dict, steps: int, joints: slice) -> float:
    env = make(name)
    env.reset(seed=0, options={"task": task})
    rng = np.random.default_rng(0)
    speeds = []
    for _ in range(steps):
        env.step(rng.uniform(-1, 1, env.action_space.shape))
        speeds.append(np.abs(env.unwrapped.data.qvel[joints]).mean())
    return float(np.mean(speeds))


@pytest.mark.parametrize(
    ("name", "param", "joints", "steps"),
    [
        ("halfcheetah_mass", "mass_scale", slice(3, 9), 60),
        ("halfcheetah_damping", "damping_scale", slice(3, 9), 60),
        ("hopper_mass", "mass_scale", slice(3, 6), 5),
    ],
)
def test_heavier_or_more_damped_joints_move_slower(name, param, joints, steps):
    light = mean_joint_speed(name, {param: 0.2}, steps, joints)
    nominal = mean_joint_speed(name, {param: 1.0}, steps, joints)
    heavy = mean_joint_speed(name, {param: 1.8}, steps, joints)
    assert light > nominal > heavy


@pytest.mark.parametrize("name", LOCOMOTION)
def test_every_parameter_changes_the_trajectory(name):
    family = get_family(name)
    env = make(name)
    train, test = (
        family.sample(np.random.default_rng(2), 1, "train")[0],
        family.sample(np.random.default_rng(2), 1, "test")[0],
    )
    steps = 10 if name == "slim_humanoid" else 30
    base = rollout(env, train.as_dict(), 0, steps)
    for p in family.parameter_names:
        other = rollout(env, {**train.as_dict(), p: test[p]}, 0, steps)
        assert other.shape != base.shape or not np.allclose(other, base), f"{p} leaves the trajectory unchanged"


# ----- observation and reward versus Gymnasium ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["halfcheetah_mass", "hopper_mass", "crippled_ant", "slim_humanoid"])
def test_obs_and_reward_are_gymnasiums_plus_the_x_velocity(name):
    family = get_family(name)
    ours = make(name)
    bare = make_bare(family.bare_env_id)
    obs, _ = ours.reset(seed=4)
    bare_obs, _ = bare.reset(seed=4)
    np.testing.assert_array_equal(obs[:-1], bare_obs)
    rng = np.random.default_rng(4)
    for _ in range(15 if name == "slim_humanoid" else 50):
        action = rng.uniform(-1, 1, ours.action_space.shape)
        obs, reward, terminated, _, info = ours.step(action)
        bare_obs, bare_reward, bare_terminated, _, bare_info = bare.step(action)
        np.testing.assert_array_equal(obs[:-1], bare_obs)
        assert obs[-1] == info["x_velocity"] == bare_info["x_velocity"]
        assert reward == bare_reward and terminated == bare_terminated
        if terminated:
            break
    assert obs.shape == (family.obs_dim,) and ours.action_space.shape == (family.action_dim,)


def test_reward_definining_gymnasium_arguments_are_rejected():
    with pytest.raises(TypeError, match="ctrl_cost_weight"):
        make("halfcheetah_mass", ctrl_cost_weight=0.5)
    with pytest.raises(TypeError, match="include_cfrc_ext_in_observation"):
        make("crippled_ant", include_cfrc_ext_in_observation=True)
    env = make("hopper_mass", frame_skip=2)  # timing arguments stay free: the reward stays exact
    assert env.unwrapped.dt == pytest.approx(2 * env.unwrapped.model.opt.timestep)


@pytest.mark.parametrize("name", ["halfcheetah_mass", "slim_humanoid"])
def test_reward_rejects_wrong_shapes(name):
    family = get_family(name)
    obs = torch.zeros(5, family.obs_dim)
    action = torch.zeros(5, family.action_dim)
    with pytest.raises(ValueError, match=str(family.obs_dim)):
        family.reward(obs[:, :-1], action, obs[:, :-1])
    with pytest.raises(ValueError, match=str(family.action_dim)):
        family.terminated(obs, action[:, :-1], obs)
    with pytest.raises(ValueError, match="action"):
        family.reward(obs, action[:3], obs)


# ----- splits, registration, pickling ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["halfcheetah_mass", "halfcheetah_damping"])
def test_cadm_moderate_and_extreme_splits_partition_the_test_split(name):
    family = get_family(name)
    rng = np.random.default_rng(0)
    moderate = {t.as_array()[0] for t in family.sample(rng, 200, "test_moderate")}
    extreme = {t.as_array()[0] for t in family.sample(rng, 200, "test_extreme")}
    test = {t.as_array()[0] for t in family.sample(rng, 400, "test")}
    assert moderate == {np.float32(v) for v in (0.4, 0.5, 1.5, 1.6)}
    assert extreme == {np.float32(v) for v in (0.2, 0.3, 1.7, 1.8)}
    assert test == moderate | extreme
    with pytest.raises(ValueError, match="test_moderate"):
        family.sample(rng, 1, "validation")


def test_families_registered_with_bare_env_ids():
    names = {f.name for f in mbmeta.envs.families()}
    assert set(LOCOMOTION) <= names
    for name in LOCOMOTION:
        family = get_family(name)
        assert family.bare_env_id in gym.registry
        assert family.notes  # the docs table shows how each differs from Gymnasium


def test_pickle_round_trip_keeps_class_and_task():
    env = make("crippled_halfcheetah", task={"crippled_joint": 5}).unwrapped
    clone = pickle.loads(pickle.dumps(env))
    assert type(clone) is type(env)
    assert clone.task == env.task
    np.testing.assert_array_equal(clone.model.actuator_gear, env.model.actuator_gear)


def test_building_the_cheetah_prints_no_mujoco_warning(capfd):
    make("halfcheetah_damping").close()
    out, err = capfd.readouterr()
    assert "settotalmass" not in out + err
