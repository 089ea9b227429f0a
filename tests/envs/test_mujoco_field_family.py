"""MujocoFieldFamily: a family from a Gymnasium MuJoCo env id and named model fields, without env code."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from mbmeta.envs import Choice, Field, Interval, MujocoFieldFamily
from mbmeta.envs.contract import check_family_env
from mbmeta.envs.task_effect import check_task_effect


def _terminated(obs, action, next_obs):
    return ~torch.isfinite(next_obs).all(-1) | (next_obs[..., 1].abs() > 0.2)


def _reward(obs, action, next_obs):
    return (~_terminated(obs, action, next_obs)).float()


def pendulum_family(fields=None, **kwargs):
    """Gymnasium's InvertedPendulum-v5 with the given fields (default: motor gear) varied."""
    fields = fields or [Field("gear", "actuator_gear")]
    names = [f.name for f in fields]
    settings = dict(
        train={n: Interval(0.5, 1.5) for n in names},
        test={n: Choice((0.2, 2.5)) for n in names},
        reward=_reward,
        terminated=_terminated,
    )
    env_id = kwargs.pop("env_id", "InvertedPendulum-v5")
    return MujocoFieldFamily("test_inverted_pendulum", env_id, fields, **{**settings, **kwargs})


def test_a_task_scales_the_nominal_values_and_never_compounds():
    env = pendulum_family().make_env()
    model = env.unwrapped.model
    nominal = model.actuator_gear.copy()
    for gear in (2.0, 0.5, 0.5, 1.0):
        env.reset(seed=0, options={"task": {"gear": gear}})
        np.testing.assert_allclose(model.actuator_gear, nominal * gear)


def test_named_rows_select_bodies_joints_and_actuators():
    fields = [
        Field("pole_mass", ("body_mass", "body_inertia"), index="pole"),
        Field("hinge_damping", "dof_damping", index="hinge"),
        Field("gear", "actuator_gear", index="slider"),  # the unnamed actuator driving the joint 'slider'
        Field("gravity", "opt.gravity"),
        Field("friction", "geom_friction", index=[0]),
    ]
    env = pendulum_family(fields).make_env()
    model = env.unwrapped.model
    before = {name: np.array(getattr(model, name), copy=True) for name in ("body_mass", "body_inertia", "dof_damping")}
    gravity, gear = model.opt.gravity.copy(), model.actuator_gear.copy()
    task = {"pole_mass": 2.0, "hinge_damping": 3.0, "gear": 1.5, "gravity": 0.5, "friction": 1.2}
    env.reset(seed=0, options={"task": task})
    pole, hinge = model.body("pole").id, model.jnt_dofadr[model.joint("hinge").id]
    expected_mass = before["body_mass"].copy()
    expected_mass[pole] *= 2.0
    np.testing.assert_allclose(model.body_mass, expected_mass)  # the cart's mass is untouched
    np.testing.assert_allclose(model.body_inertia[pole], before["body_inertia"][pole] * 2.0)
    assert model.dof_damping[hinge] == pytest.approx(before["dof_damping"][hinge] * 3.0)
    np.testing.assert_allclose(model.opt.gravity, gravity * 0.5)
    np.testing.assert_allclose(model.actuator_gear, gear * 1.5)


def test_two_parameters_on_one_field_multiply_their_own_rows():
    fields = [Field("all_mass", "body_mass"), Field("pole_mass", "body_mass", index="pole")]
    env = pendulum_family(fields).make_env()
    model = env.unwrapped.model
    nominal = model.body_mass.copy()
    env.reset(seed=0, options={"task": {"all_mass": 2.0, "pole_mass": 3.0}})
    expected = nominal * 2.0
    expected[model.body("pole").id] *= 3.0
    np.testing.assert_allclose(model.body_mass, expected)


def test_the_env_takes_the_task_both_ways_and_reports_it():
    env = pendulum_family().make_env()
    _, info = env.reset(seed=0, options={"task": {"gear": 0.7}})
    assert info["task"] == {"gear": 0.7}
    *_, info = env.step(env.action_space.sample())
    assert info["task"] == {"gear": 0.7}
    env.set_wrapper_attr("task", {"gear": 1.3})  # what vector_env.set_attr("task", ...) does
    _, info = env.reset(seed=0)
    assert info["task"] == {"gear": 1.3}
    assert env.unwrapped.model.actuator_gear[0, 0] == pytest.approx(130.0)


def test_vector_envs_set_each_sub_environments_task():
    family = pendulum_family()
    vec = gym.vector.SyncVectorEnv([family.make_env, family.make_env])
    vec.set_attr("task", [{"gear": 0.5}, {"gear": 1.5}])
    _, info = vec.reset(seed=0)
    np.testing.assert_allclose(info["task"]["gear"], [0.5, 1.5])
    gears = [env.unwrapped.model.actuator_gear[0, 0] for env in vec.envs]
    np.testing.assert_allclose(gears, [50.0, 150.0])


def test_every_parameter_changes_the_physics_and_the_family_passes_the_contract_check():
    fields = [Field("gear", "actuator_gear"), Field("pole_mass", ("body_mass", "body_inertia"), index="pole")]
    family = pendulum_family(fields)
    assert all(effect.measurable for effect in check_task_effect(family))
    check_family_env(family)


def test_the_episode_length_comes_from_the_gymnasium_spec():
    assert pendulum_family().episode_steps == 1000
    assert pendulum_family(episode_steps=50).episode_steps == 50


def test_a_validation_split_is_sampled_and_evaluated():
    from mbmeta.evaluation.episodes import evaluation_tasks

    family = pendulum_family(validation={"gear": [0.35, 1.8]})
    assert [t["gear"] for t in evaluation_tasks(family, "validation")] == [0.35, 1.8]
    assert pendulum_family().validation == ()


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Field("gear", "actuator_gears"), r"MjModel has no field 'actuator_gears'"),
        (lambda: pendulum_family(env_id="NoSuchEnv-v9"), r"unknown Gymnasium env id 'NoSuchEnv-v9'"),
        (lambda: pendulum_family(train={"mass": [1.0]}), r"each train region must give exactly the parameters"),
        (lambda: pendulum_family(test={"gear": [1.0]}), r"test task \{'gear': 1.0\} lies in the train split"),
        (lambda: pendulum_family(test={"gear": [-1.0]}), r"parameter 'gear' must be > 0"),
        (
            lambda: pendulum_family(validation={"gear": [2.5]}),
            r"validation task \{'gear': 2.5\} lies in the test split",
        ),
        (
            lambda: pendulum_family(validation={"gear": [1.0]}),
            r"validation task \{'gear': 1.0\} lies in the train split",
        ),
        (lambda: pendulum_family(validation={"gear": [0.0]}), r"parameter 'gear' must be > 0"),
        (lambda: pendulum_family(train={"gear": "big"}), r"train\['gear'\] must be a Choice, an Interval or a list"),
    ],
)
def test_a_bad_family_definition_is_refused_when_built(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize(
    "field, message",
    [
        (Field("m", "body_mass", index="no_such_body"), r"the model has no body named 'no_such_body'"),
        (Field("m", "body_mass", index=7), r"rows \[7\] are out of range for body_mass \(3 rows\)"),
        (Field("m", "body_parentid"), r"body_parentid is not a float array"),
        (Field("m", "opt.timestep", index=0), r"opt.timestep is a number; it has no rows"),
    ],
)
def test_fields_the_model_lacks_are_refused_when_the_env_is_built(field, message):
    family = pendulum_family([field])
    with pytest.raises(ValueError, match=message):
        family.make_env()


def test_without_a_reward_the_family_says_to_plan_with_the_learned_one():
    family = pendulum_family(reward=None)
    row = torch.zeros(1, 4), torch.zeros(1, 1), torch.zeros(1, 4)
    with pytest.raises(ValueError, match=r"has no exact reward.*agent\.exact_reward false"):
        family.reward(*row)
    with pytest.raises(ValueError, match=r"its reward\(\) failed.*agent\.exact_reward false"):
        check_family_env(family)
    check_family_env(family, exact_reward=False)  # planning with the learned reward needs none


def test_without_a_termination_the_planner_assumes_none():
    family = pendulum_family(terminated=None, reward=lambda o, a, n: torch.ones(n.shape[:-1]))
    row = torch.zeros(3, 4), torch.zeros(3, 1), torch.full((3, 4), 9.0)
    assert family.terminated(*row).tolist() == [False, False, False]


def test_fields_are_frozen_values():
    field = Field("gear", "actuator_gear", index=["hinge"])
    assert field.fields == ("actuator_gear",) and field.index == ("hinge",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        field.name = "other"
