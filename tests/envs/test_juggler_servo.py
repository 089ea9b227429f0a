"""The juggler's servo actuation and action repeat (``juggler_balance_servo``) and the paddle-frame geometry.

Why these exist: experiments/juggler_diagnosis. The generic family contract (check_env, exact reward, splits) runs on
``juggler_balance_servo`` in test_families.py like on every registered family.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import mbmeta.envs
from mbmeta.control.collection import collect_episodes
from mbmeta.control.factory import make_initial_policy
from mbmeta.envs.juggler import (
    BALANCE_TARGET,
    BALL_RADIUS,
    FRAME_SKIP,
    SERVO_ACTION_REPEAT,
    SERVO_EPISODE_STEPS,
    SERVO_SPAN,
    inverse_kinematics,
    is_servo,
)
from mbmeta.envs.juggler_controller import JugglerController
from mbmeta.envs.juggler_geometry import (
    ball_in_paddle_frame,
    ball_in_world_frame,
    paddle_kinematics,
    paddle_pose,
    to_paddle_frame_obs,
    to_world_frame_obs,
)

BALANCE = mbmeta.envs.get_family("juggler_balance")
SERVO = mbmeta.envs.get_family("juggler_balance_servo")
HOME = inverse_kinematics(BALANCE_TARGET[0], BALANCE_TARGET[1] - BALL_RADIUS, 0.0)


def nominal_with(**changes: float) -> dict[str, float]:
    return {**SERVO.nominal().as_dict(), **changes}


def hold(env: gym.Env, action: np.ndarray, steps: int, task: dict[str, float] | None = None) -> np.ndarray:
    """Observations ``[steps, 14]`` of holding one action from the reset pose (seed 0)."""
    env.reset(seed=0, options={"task": task or SERVO.nominal()})
    return np.array([env.step(action)[0] for _ in range(steps)])


def test_servo_family_runs_the_same_seconds_at_25_hz():
    env = SERVO.make_env()
    try:
        assert env.unwrapped.dt == pytest.approx(0.001 * FRAME_SKIP * SERVO_ACTION_REPEAT) == 0.04
        assert SERVO.episode_steps == SERVO_EPISODE_STEPS == BALANCE.episode_steps // 2
        assert env.spec.max_episode_steps == SERVO_EPISODE_STEPS
        assert is_servo(env.unwrapped.model) and not is_servo(BALANCE.make_env().unwrapped.model)
    finally:
        env.close()


def test_zero_action_holds_the_home_pose_where_zero_torque_sags():
    servo, torque = SERVO.make_env(), BALANCE.make_env()
    try:
        q_servo = hold(servo, np.zeros(3), 12)[-1, :3]  # 0.48 s
        torque.reset(seed=0)
        for _ in range(24):  # the same 0.48 s at 50 Hz
            q_torque = torque.step(np.zeros(3))[0][:3]
    finally:
        servo.close(), torque.close()
    assert np.abs(q_servo - HOME).max() < 0.03  # the servo sags only a little under the arm's and ball's weight
    assert np.abs(q_torque - HOME).max() > 0.3  # without torque the arm falls


def test_action_sets_the_joint_targets():
    action = np.array([0.5, -0.5, 1.0])
    env = SERVO.make_env()
    try:
        q = hold(env, action, 25)[-1, :3]  # 1 s: settled
    finally:
        env.close()
    np.testing.assert_allclose(q, HOME + SERVO_SPAN * action, atol=0.03)


def test_weaker_servo_sags_more_and_is_limited_to_less_torque():
    env = SERVO.make_env()
    try:
        strong = hold(env, np.zeros(3), 25, nominal_with(gear_scale=1.5))[-1, :3]
        limits = env.unwrapped.model.actuator_forcerange[:, 1].copy()
        weak = hold(env, np.zeros(3), 25, nominal_with(gear_scale=0.5))[-1, :3]
        np.testing.assert_allclose(env.unwrapped.model.actuator_forcerange[:, 1], limits / 3)
        hold(env, np.zeros(3), 1, nominal_with(gear_scale=1.5))  # idempotent: back to the same servo
        np.testing.assert_allclose(env.unwrapped.model.actuator_forcerange[:, 1], limits)
    finally:
        env.close()
    assert np.abs(weak - HOME).sum() > 2 * np.abs(strong - HOME).sum() > 0


def test_action_repeat_equals_repeated_steps():
    actions = np.random.default_rng(0).uniform(-1, 1, (6, 3))
    once, twice = gym.make(BALANCE.env_id, action_repeat=2), gym.make(BALANCE.env_id)
    try:
        once.reset(seed=3), twice.reset(seed=3)
        for action in actions:
            obs_once, _, term_once, *_ = once.step(action)
            twice.step(action)
            obs_twice, _, term_twice, *_ = twice.step(action)
            np.testing.assert_allclose(obs_once, obs_twice, atol=1e-9)
            assert term_once == term_twice
    finally:
        once.close(), twice.close()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"actuation": "velocity"}, "actuation"),
        ({"action_repeat": 0}, "action_repeat"),
        ({"action_repeat": 1.5}, "action_repeat"),
    ],
)
def test_bad_actuation_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make(BALANCE.env_id, **kwargs)


def test_scripted_servo_controller_balances_a_test_task():
    task = SERVO.sample(np.random.default_rng(2), 1, "test")[0]
    policy = make_initial_policy(SERVO, "scripted", noise=0.0)
    episode = collect_episodes(policy, 1, family=SERVO, tasks=[task], seed=0).buffer.episode(0)
    assert len(episode["reward"]) == SERVO_EPISODE_STEPS and not episode["terminated"].any()


def test_random_actions_keep_the_ball_longer_with_servos():
    # The point of the variant for exploration: random actions do not throw the ball off at once.
    def seconds(family) -> float:
        collection = collect_episodes(make_initial_policy(family, "random"), 8, family=family, num_envs=8, seed=0)
        env = family.make_env()
        dt = env.unwrapped.dt
        env.close()
        return float(np.mean(collection.buffer.episode_lengths)) * dt

    assert seconds(SERVO) > 1.5 * seconds(BALANCE)


def test_servo_controller_rejects_bounce():
    with pytest.raises(ValueError, match="servo"):
        JugglerController("bounce", actuation="servo")
    with pytest.raises(ValueError, match="actuation"):
        JugglerController("balance", actuation="position")


# ----- the ball in the paddle frame --------------------------------------------------------------------------
def random_observations(n: int = 64) -> np.ndarray:
    env = BALANCE.make_env()
    rng = np.random.default_rng(0)
    out = []
    try:
        env.reset(seed=0)
        while len(out) < n:
            obs, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 3))
            out.append(obs)
            if terminated or truncated:
                env.reset(seed=len(out))
    finally:
        env.close()
    return np.array(out)


def test_paddle_frame_round_trips_and_agrees_in_torch():
    obs = random_observations()
    ball = ball_in_paddle_frame(obs)
    np.testing.assert_allclose(ball_in_world_frame(obs[:, :6], ball), obs[:, 9:14], atol=1e-12)
    ball_t = ball_in_paddle_frame(torch.as_tensor(obs))
    np.testing.assert_allclose(ball_t.numpy(), ball, atol=1e-12)


def test_paddle_kinematics_rates_are_the_derivative_of_the_pose():
    obs = random_observations(16)
    q, qvel, eps = obs[:, :3], obs[:, 3:6], 1e-6
    numeric = (paddle_pose(q + eps * qvel) - paddle_pose(q - eps * qvel)) / (2 * eps)
    np.testing.assert_allclose(paddle_kinematics(q, qvel)[:, 3:], numeric, atol=1e-6)
    np.testing.assert_allclose(paddle_kinematics(q, qvel)[:, :3], paddle_pose(q), atol=1e-12)


def test_resting_ball_sits_on_the_paddle_normal():
    env = SERVO.make_env()
    try:
        obs = hold(env, np.zeros(3), 10)[-1]  # the servo family observes the ball in the paddle frame
    finally:
        env.close()
    s, n, vs, vn, _ = obs[9:14]
    assert abs(n - BALL_RADIUS) < 2e-3 and abs(vn) < 0.02  # on the surface, not moving off it


def test_paddle_frame_observation_is_the_world_one_transformed_and_rewards_agree():
    # The servo family observes the ball in the paddle frame; the same env observing the world frame must see the same
    # physics, and the family's reward and termination (which convert back) must equal the world-frame family's.
    actions = np.random.default_rng(1).uniform(-0.3, 0.3, (40, 3))
    paddle, world = SERVO.make_env(), gym.make(BALANCE.env_id, actuation="servo", action_repeat=2)
    try:
        p_obs, _ = paddle.reset(seed=4)
        w_obs, _ = world.reset(seed=4)
        for action in actions:
            p_next, p_reward, p_term, *_ = paddle.step(action)
            w_next, w_reward, w_term, *_ = world.step(action)
            np.testing.assert_allclose(to_world_frame_obs(p_next), w_next, atol=1e-9)
            np.testing.assert_allclose(to_paddle_frame_obs(w_next), p_next, atol=1e-9)
            assert p_reward == pytest.approx(w_reward, abs=1e-9) and p_term == w_term
            t = [torch.as_tensor(x)[None] for x in (p_obs, action, p_next)]
            assert float(SERVO.reward(*t)) == pytest.approx(p_reward, abs=1e-6)
            if p_term:
                break
            p_obs = p_next
    finally:
        paddle.close(), world.close()


def test_two_joint_variant():
    two = mbmeta.envs.get_family("juggler_balance_2j")
    assert two.parameter_names == ("ball_mass_scale", "friction_scale") and two.action_dim == 2
    train = {tuple(t.values) for t in two.sample(np.random.default_rng(0), 200, "train")}
    assert len(train) == 10  # K = 10 fixed training tasks
    assert two.make_controller() is None
    env = two.make_env()
    try:
        obs, _ = env.reset(seed=0, options={"task": {"ball_mass_scale": 1.5, "friction_scale": 0.5}})
        elbow = obs[1]
        for action in np.random.default_rng(0).uniform(-1, 1, (30, 2)):
            obs, _, terminated, *_ = env.step(action)
            assert abs(obs[1] - elbow) < 2e-3  # the elbow is locked; the other joints move
            if terminated:
                break
        assert abs(obs[0] - HOME[0]) > 0.01 or abs(obs[2] - HOME[2]) > 0.01
        with pytest.raises(ValueError, match="action"):
            env.step(np.zeros(3))
    finally:
        env.close()
