"""The servo span option, the bounce success rule and ``juggler_bounce_servo``.

Why these exist: issue 20's bounce table needs a bounce family a sampling planner can control (servos, as for
balance, but with strikes: experiments/juggler_diagnosis, step 6) and a success that means bouncing. The generic
family contract runs on ``juggler_bounce_servo`` in test_families.py like on every registered family.
"""

from __future__ import annotations

import math

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import torch

import mbmeta.envs
from mbmeta.envs.juggler import (
    BALL_RADIUS,
    BOUNCE_APEX,
    BOUNCE_APEX_TOLERANCE,
    BOUNCE_HOME_HEIGHT,
    BOUNCE_SERVO_SPAN,
    BOUNCE_SUCCESS_APEXES,
    GRAVITY,
    I_BALL_VZ,
    I_BALL_X,
    I_BALL_Z,
    OBS_NAMES,
    SERVO_EPISODE_STEPS,
    SERVO_SPAN,
    bounce_apexes,
    bounce_flight_value,
    bounce_landing_value,
    inverse_kinematics,
    is_servo,
    use_servo_actuators,
)

BOUNCE = mbmeta.envs.get_family("juggler_bounce")
BOUNCE_SERVO = mbmeta.envs.get_family("juggler_bounce_servo")
BALANCE_SERVO = mbmeta.envs.get_family("juggler_balance_servo")
BOUNCE_HOME = inverse_kinematics(BOUNCE_APEX[0], BOUNCE_HOME_HEIGHT, 0.0)


def held_joints(env: gym.Env, action: np.ndarray, steps: int) -> np.ndarray:
    """Joint angles ``[3]`` after holding ``action`` for ``steps`` env steps from the reset pose (seed 0)."""
    env.reset(seed=0)
    for _ in range(steps):
        obs = env.step(action)[0]
    return obs[:3]


# ----- the servo span ---------------------------------------------------------------------------------------
def test_servo_span_sets_how_far_an_action_moves_the_joint_target():
    action = np.array([0.4, -0.4, 0.4])
    default, wide = gym.make(BALANCE_SERVO.env_id), gym.make(BALANCE_SERVO.env_id, servo_span=0.3)
    try:
        home = held_joints(default, np.zeros(3), 25)
        moved_default = held_joints(default, action, 25) - home
        moved_wide = held_joints(wide, action, 25) - home
        assert wide.unwrapped.servo_span == 0.3 and default.unwrapped.servo_span == SERVO_SPAN
    finally:
        default.close(), wide.close()
    np.testing.assert_allclose(moved_default, SERVO_SPAN * action, atol=0.01)
    np.testing.assert_allclose(moved_wide, 0.3 * action, atol=0.02)


@pytest.mark.parametrize("span", [0, -0.1, 3.5, "1", True])
def test_bad_servo_span_raises(span):
    with pytest.raises(ValueError, match="servo_span"):
        gym.make(BALANCE_SERVO.env_id, servo_span=span)


def test_use_servo_actuators_rejects_a_non_positive_span():
    model = mujoco.MjModel.from_xml_path(str(mbmeta.envs.juggler.MODEL_PATH))
    with pytest.raises(ValueError, match="span"):
        use_servo_actuators(model, BOUNCE_HOME, span=0.0)
    assert not is_servo(model)  # nothing was changed


# ----- bounce success ---------------------------------------------------------------------------------------
def flight_episode(apex: float, bounces: int, steps_per_bounce: int = 20, dt: float = 0.04) -> dict[str, np.ndarray]:
    """World-frame observations ``[L, 14]`` of a ball bouncing off z = 0.64 to ``apex``, ``bounces`` times."""
    v0 = np.sqrt(2 * GRAVITY * (apex - 0.64))
    t = (np.arange(steps_per_bounce) + 0.5) * (2 * v0 / GRAVITY) / steps_per_bounce
    z, vz = 0.64 + v0 * t - 0.5 * GRAVITY * t**2, v0 - GRAVITY * t
    obs = np.zeros((bounces * steps_per_bounce, len(OBS_NAMES)))
    obs[:, I_BALL_Z], obs[:, I_BALL_VZ] = np.tile(z, bounces), np.tile(vz, bounces)
    obs[:, 9] = BOUNCE_APEX[0]
    obs[:, 7] = 0.6  # paddle height
    length = len(obs)
    return {"next_obs": obs, "terminated": np.zeros(length, bool), "reward": np.zeros(length)}


def test_bounce_apexes_finds_each_flight_apex():
    episode = flight_episode(apex=1.45, bounces=4)
    apexes = bounce_apexes(episode["next_obs"])
    assert len(apexes) == 4
    np.testing.assert_allclose(apexes, 1.45, atol=0.01)  # free-flight apex of the last rising step


def test_bounce_success_needs_target_apexes_and_a_kept_ball():
    on_target = flight_episode(apex=BOUNCE_APEX[1] - 0.5 * BOUNCE_APEX_TOLERANCE, bounces=BOUNCE_SUCCESS_APEXES)
    assert BOUNCE.success(on_target)
    too_few = flight_episode(apex=BOUNCE_APEX[1], bounces=BOUNCE_SUCCESS_APEXES - 1)
    assert not BOUNCE.success(too_few)
    too_low = flight_episode(apex=BOUNCE_APEX[1] - 2 * BOUNCE_APEX_TOLERANCE, bounces=12)  # holding it up: 1.23 m
    assert not BOUNCE.success(too_low)
    lost = {**on_target, "terminated": np.r_[np.zeros(len(on_target["terminated"]) - 1, bool), True]}
    assert not BOUNCE.success(lost)
    assert "apexes" in BOUNCE.success_text


def test_bounce_measures_count_the_apexes_in_below_and_above_the_target_band():
    low = flight_episode(apex=BOUNCE_APEX[1] - 2 * BOUNCE_APEX_TOLERANCE, bounces=3)
    on = flight_episode(apex=BOUNCE_APEX[1], bounces=4)
    high = flight_episode(apex=BOUNCE_APEX[1] + 2 * BOUNCE_APEX_TOLERANCE, bounces=2)
    episode = {k: np.concatenate([low[k], on[k], high[k]]) for k in low}
    assert BOUNCE.measures(episode) == {"apexes": 9.0, "target_apexes": 4.0, "low_apexes": 3.0, "high_apexes": 2.0}
    assert BOUNCE.success(episode) is False  # 4 target apexes of the 5 needed


# ----- juggler_bounce_servo ---------------------------------------------------------------------------------
def test_bounce_servo_family_is_the_bounce_task_on_wide_servos_at_25_hz():
    env = BOUNCE_SERVO.make_env()
    try:
        base = env.unwrapped
        assert is_servo(base.model) and base.servo_span == BOUNCE_SERVO_SPAN == 1.0
        assert base.dt == pytest.approx(0.04) and env.spec.max_episode_steps == SERVO_EPISODE_STEPS
        obs, _ = env.reset(seed=0)
        world = BOUNCE_SERVO.world_obs(obs)
        assert world[I_BALL_Z] == pytest.approx(1.0)  # the ball is dropped from 1 m, as in juggler_bounce
        np.testing.assert_array_equal(world, obs)  # the ball in the world frame, as juggler_bounce observes it
        q = held_joints(env, np.zeros(3), 10)
    finally:
        env.close()
    assert np.abs(q - BOUNCE_HOME).max() < 0.03  # zero action holds the bounce home pose
    assert BOUNCE_SERVO.make_controller() is None


def test_bounce_servo_reward_reads_the_world_frame():
    env = BOUNCE_SERVO.make_env()
    try:
        obs, _ = env.reset(seed=1)
        action = np.array([0.2, -0.1, 0.0], dtype=np.float32)
        next_obs, reward, *_, info = env.step(action)
    finally:
        env.close()
    torch_reward = BOUNCE_SERVO.reward(obs[None], action[None], next_obs[None])
    assert float(torch_reward[0]) == pytest.approx(reward, abs=1e-9)
    assert reward == pytest.approx(info["apex"] - info["ctrl_cost"], abs=1e-9)
    world_apex = BOUNCE_SERVO.world_obs(next_obs)[I_BALL_Z]  # falling: the apex term is the ball's height
    assert info["apex"] == pytest.approx(
        np.exp(-(abs(world_apex - 1.5) + abs(BOUNCE_SERVO.world_obs(next_obs)[9] - 0.5)) / 0.25), rel=1e-6
    )


@pytest.mark.parametrize(
    ("x", "z", "vx", "vz"), [(0.42, 1.3, 0.3, 1.2), (0.55, 1.0, -0.25, -0.5), (0.5, 0.9, 0.0, 2.0)]
)
def test_the_landing_value_is_where_mujoco_flies_the_ball_down_to_the_paddle(x, z, vx, vz):
    """The terminal value's landing point against MuJoCo's flight (1 ms steps) to the home paddle's contact height."""
    env = BOUNCE_SERVO.make_env()
    env.reset(seed=0)
    sim = env.unwrapped
    qpos, qvel = sim.data.qpos.copy(), sim.data.qvel.copy()
    qpos[3:6], qvel[3:6] = (x, z, 0.0), (vx, vz, 0.0)
    sim.set_state(qpos, qvel)
    value = float(bounce_landing_value(torch.tensor(sim._get_obs(), dtype=torch.float64)))
    catch = BOUNCE_HOME_HEIGHT + BALL_RADIUS
    before = sim.data.qpos[3:5].copy()
    while sim.data.qpos[4] > catch or sim.data.qvel[4] > 0:
        before = sim.data.qpos[3:5].copy()
        mujoco.mj_step(sim.model, sim.data)
    after = sim.data.qpos[3:5]
    landing = before[0] + (after[0] - before[0]) * (before[1] - catch) / (before[1] - after[1])
    env.close()
    assert 0.0 < value <= 1.0
    miss = -0.25 * math.log(value)
    assert abs(abs(landing - BOUNCE_APEX[0]) - miss) < 2e-3  # 1 ms steps: the crossing is known to ~1 mm


def test_the_flight_value_scores_a_target_flight_above_a_held_or_a_low_ball():
    """The landing factor times the apex factor of the flight's energy height, rising or falling."""
    obs = torch.zeros(4, len(OBS_NAMES), dtype=torch.float64)
    obs[:, I_BALL_X] = BOUNCE_APEX[0]
    target_speed = math.sqrt(2 * GRAVITY * (BOUNCE_APEX[1] - 0.7))
    obs[:, I_BALL_Z] = torch.tensor([0.7, 0.7, BOUNCE_HOME_HEIGHT + BALL_RADIUS, 0.7], dtype=torch.float64)
    obs[:, I_BALL_VZ] = torch.tensor([target_speed, -target_speed, 0.0, 0.5 * target_speed], dtype=torch.float64)
    rising, falling, held, low = bounce_flight_value(obs).tolist()
    assert rising == pytest.approx(1.0) and falling == pytest.approx(float(bounce_landing_value(obs[1])))
    assert held < 0.05 and low < rising  # held: landing on target, but far below the apex band
    np.testing.assert_allclose(
        bounce_flight_value(obs),
        bounce_landing_value(obs)
        * torch.exp(-(obs[:, I_BALL_Z] + obs[:, I_BALL_VZ] ** 2 / (2 * GRAVITY) - BOUNCE_APEX[1]).abs() / 0.25),
    )
    assert float(bounce_flight_value(obs[0].numpy())) == pytest.approx(rising)  # NumPy arrays too
