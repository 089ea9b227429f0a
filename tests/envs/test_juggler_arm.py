"""The juggler's arm as known physics (``mbmeta.envs.juggler_arm``) against MuJoCo's own arm.

Why these exist: issue 20's bounce fails on the test split's motors (0.5-0.6× and 1.5-1.7× the trained strength)
because the network's arm does not carry there (experiments/juggler_diagnosis, steps 13 and 16). :class:`ServoArm`
is the arm's rigid-body and servo law with fitted constants and an adapted strength. These tests hold it to MuJoCo:
with the MJCF's constants it reproduces MuJoCo's joints at any strength, the strength is recovered from transitions,
fitting from generic values cuts the error, and a model told it computes the whole observation from the action.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

import mbmeta.envs
from mbmeta.envs.juggler_arm import STRENGTHS, ServoArm, ServoArmBallContact, ServoArmBallPush
from mbmeta.models.dynamics import MetaDynamicsModel
from mbmeta.models.known_physics import build_known_physics
from mbmeta.types import Transition

FAMILY = mbmeta.envs.get_family("juggler_bounce_servo")
PATH = "mbmeta.envs.juggler_arm:ServoArmBallContact"


def _mujoco_arm(gear: float = 1.0):
    """An environment of the nominal task at motor strength ``gear`` (its MuJoCo model and data), reset."""
    env = FAMILY.make_env()
    env.reset(seed=0, options={"task": FAMILY.validate({**FAMILY.nominal(), "gear_scale": gear})})
    return env


def _true_constants(arm: ServoArm, model: mujoco.MjModel) -> ServoArm:
    """``arm`` with the MJCF's constants (masses, centres, inertias about the hinge axis, joints, servos at gear 1)."""
    links = [model.body(name).id for name in ("upper_arm", "forearm", "hand")]
    inertia = []
    for i in links:
        rotation = np.zeros(9)
        mujoco.mju_quat2Mat(rotation, model.body_iquat[i])
        rotation = rotation.reshape(3, 3)
        inertia.append((rotation @ np.diag(model.body_inertia[i]) @ rotation.T)[1, 1])  # the hinges turn about y
    with torch.no_grad():
        arm.log_mass.copy_(torch.tensor(model.body_mass[links]).log())
        arm.com.copy_(torch.tensor(model.body_ipos[links][:, [0, 2]]))
        arm.log_inertia.copy_(torch.tensor(inertia).log())
        arm.log_armature.copy_(torch.tensor(model.dof_armature[:3]).log())
        arm.log_damping.copy_(torch.tensor(model.dof_damping[:3]).log())
        arm.log_kp.copy_(torch.tensor(-model.actuator_biasprm[:, 1]).log())
        arm.log_kv.copy_(torch.tensor(-model.actuator_biasprm[:, 2]).log())
    return arm


def _arm_steps(gear: float, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``obs, action, next_obs [n, 6]``/``[n, 3]``: MuJoCo steps of the arm at motor strength ``gear`` from random
    states near home under random actions (the whole box: saturated and unsaturated servos), the ball far away."""
    env = _mujoco_arm(gear)
    model, data = env.unwrapped.model, env.unwrapped.data
    home = ServoArm().home.double().numpy()
    rng = np.random.default_rng(seed)
    rows = []
    try:
        for _ in range(n):
            mujoco.mj_resetData(model, data)
            data.qpos[:3] = home + rng.uniform(-0.5, 0.5, 3)
            data.qvel[:3] = rng.uniform(-3.0, 3.0, 3)
            data.qpos[3:5] = (3.0, 2.0)  # the ball out of reach
            action = rng.uniform(-1.0, 1.0, 3)
            before = np.r_[data.qpos[:3], data.qvel[:3]]
            data.ctrl[:] = action
            for _ in range(40):  # one 0.04 s control step at MuJoCo's 1 ms
                mujoco.mj_step(model, data)
            rows.append((before, action, np.r_[data.qpos[:3], data.qvel[:3]]))
    finally:
        env.close()
    return tuple(torch.tensor(np.array(column)) for column in zip(*rows, strict=True))


def test_it_is_a_known_physics_of_every_entry_that_uses_the_action():
    physics = build_known_physics(PATH, 14)
    assert tuple(physics.computed) == tuple(range(14))
    assert physics.uses_action and physics.adapts


@pytest.mark.parametrize("gear", [1.0, 0.6, 1.6])
def test_with_the_mjcf_constants_it_is_mujocos_arm_at_any_strength(gear):
    arm = _true_constants(ServoArm(), _mujoco_arm().unwrapped.model).double()
    obs, action, next_obs = _arm_steps(gear, 64)
    with torch.no_grad():
        predicted = arm(obs, action, gear)
        one = arm(obs, action, 1.0)
    # the same law and integrator: equal up to the constants' float32 rounding (rates reach 10 rad/s; 20 substeps
    # instead of MuJoCo's 40 miss by 0.1 rad/s)
    assert (predicted - next_obs).abs().max() < 1e-5
    if gear != 1.0:
        assert (one - next_obs).abs().max() > 1e-2  # and the strength matters


def test_the_strength_is_recovered_from_transitions():
    arm = _true_constants(ServoArm(), _mujoco_arm().unwrapped.model).double()
    valid = torch.ones(1, 12, dtype=torch.bool)
    for gear in (0.55, 1.0, 1.65):  # the test split's weak and strong motors, and the trained one
        obs, action, next_obs = _arm_steps(gear, 12, seed=1)
        found = float(arm.best_strength(obs[None], action[None], next_obs[None], STRENGTHS.double(), valid)[0])
        assert found == pytest.approx(gear, rel=0.01)  # refined well within the grid's 7 % step


def test_no_valid_step_keeps_strength_one():
    arm = ServoArm().double()
    obs, action, next_obs = _arm_steps(0.6, 4)
    valid = torch.zeros(1, 4, dtype=torch.bool)
    assert float(arm.best_strength(obs[None], action[None], next_obs[None], STRENGTHS.double(), valid)[0]) == 1.0


def test_fitting_from_generic_values_cuts_the_error():
    torch.manual_seed(0)
    obs, action, next_obs = (t.float() for t in _arm_steps(1.0, 96, seed=2))
    physics = ServoArmBallContact()
    with torch.no_grad():
        before = float(physics.arm.error(obs, action, next_obs).mean())
    optimiser = torch.optim.Adam(physics.arm.parameters(), lr=0.02)
    world = torch.zeros(96, 14)  # the arm's loss reads the joints only; no ball contact in these rows
    segments = lambda t: torch.cat([t, world[:, t.shape[-1] :]], -1).view(12, 8, 14)  # noqa: E731
    for _ in range(150):
        loss = physics.loss(segments(obs), segments(next_obs), action=action.view(12, 8, 3))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        after = float(physics.arm.error(obs, action, next_obs).mean())
    assert after < 0.2 * before


def test_loss_and_complete_need_the_action():
    physics = ServoArmBallContact()
    obs = torch.zeros(2, 3, 14)
    with pytest.raises(ValueError, match="needs the action"):
        physics.loss(obs, obs)
    with pytest.raises(ValueError, match="needs the action"):
        physics.complete(obs, obs)


@pytest.mark.parametrize("name, value", [("substeps", 0), ("span", 0.0), ("limits", (30.0, 15.0))])
def test_bad_settings_are_refused(name, value):
    with pytest.raises(ValueError, match=name):
        ServoArm(**{name: value})


def test_a_model_told_it_computes_every_entry_from_the_action_at_the_adapted_strength():
    torch.manual_seed(0)
    model = MetaDynamicsModel(obs_dim=14, action_dim=3, ensemble_size=2, hidden_sizes=(16,), known_physics=PATH)
    _true_constants(model.physics.arm, _mujoco_arm().unwrapped.model)
    obs6, action, next6 = (t.float() for t in _arm_steps(0.6, 10, seed=3))
    ball = torch.tensor([3.0, 2.0, 0.0, 0.0, 0.0]).expand(10, 5)  # far away: flies freely
    from mbmeta.envs.juggler import paddle_kinematics

    def world(joints):
        return torch.cat([joints, paddle_kinematics(joints[:, 0:3], joints[:, 3:6])[:, 0:3], ball], -1)

    context = Transition(
        world(obs6)[None], action[None], world(next6)[None], torch.zeros(1, 10), torch.zeros(1, 10, dtype=torch.bool)
    )
    adapted = model.adapt(context)
    assert adapted.physics_state.shape == (1, 2)
    assert float(adapted.physics_state[0, 1].exp()) == pytest.approx(0.6, rel=0.01)
    with torch.no_grad():
        prediction = adapted(world(obs6).expand(2, 1, 10, 14), action.expand(2, 1, 10, 3))
    assert prediction.var.abs().max() == 0  # every entry computed
    assert torch.equal(prediction.mean[0], prediction.mean[1])  # the members agree: the network is not read
    assert (prediction.mean[0, 0, :, 0:6] - next6).abs().max() < 0.02  # MuJoCo's joints at the adapted strength
    unadapted = model.adapt(Transition(*(field[:, :0] for field in context)))
    assert float(unadapted.physics_state[0, 1]) == 0.0  # no context: strength 1


def _episodes(task: dict, episodes: int, seed: int) -> Transition:
    """``[1, N, ...]`` transitions of random-action episodes (half the box) on the nominal ball changed by ``task``."""
    env, rng, rows = FAMILY.make_env(), np.random.default_rng(seed), []
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed * 1000 + i, options={"task": FAMILY.validate({**FAMILY.nominal(), **task})})
            for _ in range(FAMILY.episode_steps):
                action = rng.uniform(-0.5, 0.5, 3)
                next_obs, _, terminated, truncated, _ = env.step(action)
                rows.append((obs, action, next_obs))
                obs = next_obs
                if terminated or truncated:
                    break
    finally:
        env.close()
    o, a, n = (torch.tensor(np.array(column))[None] for column in zip(*rows, strict=True))
    return Transition(o, a, n, torch.zeros(o.shape[:2]), torch.zeros(o.shape[:2], dtype=torch.bool))


def _told(cls):
    """``cls()`` in float64 with the MJCF's arm, its contact's stiffness, damping and friction, and its 0.1 kg ball."""
    physics = cls()
    with torch.no_grad():
        physics.log_stiffness.fill_(np.log(4e4))
        physics.log_damping.fill_(np.log(119.0))
        physics.log_friction.fill_(np.log(0.3))
        if hasattr(physics, "log_ball_mass"):
            physics.log_ball_mass.fill_(np.log(0.1))
    physics = physics.double()
    _true_constants(physics.arm, _mujoco_arm().unwrapped.model)
    return physics


@pytest.mark.parametrize("ball_mass", [0.6, 1.7])
def test_the_balls_push_cuts_the_arm_error_through_contacts_and_its_mass_is_adapted(ball_mass):
    context = _episodes({"ball_mass_scale": ball_mass}, 4, 3)
    touched = ~ServoArmBallPush()._arm_only(context.obs, context.next_obs)[0]
    assert int(touched.sum()) >= 5  # the episodes hold contacts
    errors = {}
    for cls in (ServoArmBallContact, ServoArmBallPush):
        physics = _told(cls)
        with torch.no_grad():
            state = physics.adapt(context, None)
            predicted = physics.complete(context.obs[None], context.next_obs[None], state, action=context.action[None])
        errors[cls] = (predicted[0, 0, touched, 3:6] - context.next_obs[0, touched, 3:6]).square().mean().sqrt()
        if cls is ServoArmBallPush:
            assert state.shape == (1, 3)
            assert float(state[0, 2].exp()) == pytest.approx(ball_mass, rel=0.25)  # the grid's step is 19 %
    assert errors[ServoArmBallPush] < 0.3 * errors[ServoArmBallContact]


def test_without_contact_steps_the_ball_mass_scale_stays_one():
    physics = _told(ServoArmBallPush)
    obs6, action, next6 = _arm_steps(0.6, 10, seed=4)
    ball = torch.tensor([3.0, 0.04, 0.0, 0.0, 0.0], dtype=torch.float64).expand(10, 5)  # resting on the floor
    from mbmeta.envs.juggler import paddle_kinematics

    def world(joints):
        return torch.cat([joints, paddle_kinematics(joints[:, 0:3], joints[:, 3:6])[:, 0:3], ball], -1)

    context = Transition(
        world(obs6)[None], action[None], world(next6)[None], torch.zeros(1, 10), torch.zeros(1, 10, dtype=torch.bool)
    )
    state = physics.adapt(context, None)
    assert float(state[0, 2]) == 0.0 and float(state[0, 1].exp()) == pytest.approx(0.6, rel=0.01)


def test_the_loss_fits_the_balls_mass_through_contacts():
    context = _episodes({}, 3, 5)
    physics = _told(ServoArmBallPush)
    with torch.no_grad():
        physics.log_ball_mass.fill_(np.log(0.03))  # too light
    n = context.obs.shape[1] // 10 * 10
    segments = [t[0, :n].reshape(-1, 10, t.shape[-1]) for t in (context.obs, context.next_obs, context.action)]
    optimiser = torch.optim.Adam([physics.log_ball_mass], lr=0.05)
    for _ in range(40):
        loss = physics.loss(segments[0], segments[1], action=segments[2])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert 0.07 < float(physics.log_ball_mass.detach().exp()) < 0.14  # towards the true 0.1 kg
