"""Juggler-specific tests: kinematics and observation layout, the ball parameters' physics, the scripted controller
solving both families (run through the collector, as the training loop and the film run it), termination, bad input,
the video command, and the module structure. The generic family contract (check_env, exact reward, tasks, splits,
rendering) is in test_families.py."""

from __future__ import annotations

import math

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import torch

import mbmeta.envs
from mbmeta.commands.juggler_video import film_controller, run
from mbmeta.control.collection import collect_episodes
from mbmeta.control.factory import make_initial_policy
from mbmeta.envs import juggler
from mbmeta.envs.juggler import (
    BALANCE_TARGET,
    BALL_RADIUS,
    BOUNCE_APEX,
    I_BALL_X,
    I_BALL_Z,
    NOMINAL_RESTITUTION,
    OBS_NAMES,
    inverse_kinematics,
    paddle_pose,
)
from mbmeta.envs.juggler_controller import JugglerController

BALANCE = mbmeta.envs.get_family("juggler_balance")
BOUNCE = mbmeta.envs.get_family("juggler_bounce")
BALL_PARAMETERS = ("ball_mass_scale", "friction_scale", "restitution_scale")


def nominal_with(family, **changes: float) -> dict[str, float]:
    return {**family.nominal().as_dict(), **changes}


def immobilised_env(task: dict[str, float], q: np.ndarray) -> gym.Env:
    """A balance env with the arm at ``q`` and made (practically) immovable: huge joint armature."""
    env = gym.make(BALANCE.env_id)
    env.reset(seed=0, options={"task": task})
    model = env.unwrapped.model
    model.dof_armature[:3] = 1e3  # test-only: the arm barely moves (far larger values upset the contact solver)
    return env


def place(env: gym.Env, q: np.ndarray, ball_xz: np.ndarray, ball_vel: np.ndarray | None = None) -> None:
    u = env.unwrapped
    qpos, qvel = u.init_qpos.copy(), np.zeros(u.model.nv)
    qpos[:3], qpos[3:5], qpos[5] = q, ball_xz, 0.0
    if ball_vel is not None:
        qvel[3:5] = ball_vel
    u.set_state(qpos, qvel)


def ball_paddle_contact(env: gym.Env) -> bool:
    m, d = env.unwrapped.model, env.unwrapped.data
    pair = {m.geom("ball").id, m.geom("paddle").id}
    return any({d.contact[i].geom1, d.contact[i].geom2} == pair for i in range(d.ncon))


# ----- kinematics and observation -----------------------------------------------------------------------------
def test_observation_layout_matches_simulator():
    env = gym.make(BOUNCE.env_id)
    try:
        obs, _ = env.reset(seed=3)
        for action in np.random.default_rng(0).uniform(-1, 1, (5, 3)):
            obs, *_ = env.step(action)
        m, d = env.unwrapped.model, env.unwrapped.data
        mujoco.mj_kinematics(m, d)  # positions of the final state (mj_step leaves those of the last substep's start)
        assert obs.shape == (len(OBS_NAMES),) == (14,)
        np.testing.assert_allclose(obs[0:3], d.qpos[:3])
        np.testing.assert_allclose(obs[3:6], d.qvel[:3])
        paddle = d.site("paddle").xpos
        np.testing.assert_allclose(obs[6:8], paddle[[0, 2]])
        np.testing.assert_allclose(obs[8], d.qpos[:3].sum())
        np.testing.assert_allclose(obs[9:11], d.body("ball").xpos[[0, 2]])
        np.testing.assert_allclose(obs[11:14], d.qvel[3:6])
    finally:
        env.close()


def test_forward_kinematics_matches_mujoco_and_inverse_round_trips():
    env = gym.make(BALANCE.env_id)
    try:
        u = env.unwrapped
        rng = np.random.default_rng(0)
        for q in rng.uniform([-0.5, -2.0, -1.0], [1.5, -0.3, 1.0], size=(20, 3)):
            u.data.qpos[:3] = q
            mujoco.mj_forward(u.model, u.data)
            site = u.data.site("paddle").xpos
            np.testing.assert_allclose(paddle_pose(q), [site[0], site[2], q.sum()], atol=1e-12)
            # elbow-up IK recovers the same pose (q2 < 0 is the elbow-up branch)
            np.testing.assert_allclose(paddle_pose(inverse_kinematics(*paddle_pose(q))), paddle_pose(q), atol=1e-9)
    finally:
        env.close()


def test_reset_poses():
    for family, check in ((BALANCE, "resting"), (BOUNCE, "dropped")):
        env = gym.make(family.env_id)
        try:
            obs, _ = env.reset(seed=1)
            gap = obs[I_BALL_Z] - obs[juggler.I_PADDLE_Z]
            if check == "resting":
                assert abs(gap - BALL_RADIUS) < 0.01 and abs(obs[I_BALL_X] - BALANCE_TARGET[0]) < 0.05
            else:
                assert gap > 0.3 and abs(obs[I_BALL_X] - BOUNCE_APEX[0]) < 0.05
            assert not family.terminated(*(torch.as_tensor(a) for a in (obs, np.zeros(3), obs)))
        finally:
            env.close()


# ----- termination --------------------------------------------------------------------------------------------
def test_ball_lost_definition():
    obs = torch.zeros(4, len(OBS_NAMES), dtype=torch.float64)
    obs[:, juggler.I_PADDLE_Z] = 0.6
    obs[:, I_BALL_Z] = torch.tensor([0.64, 0.6 - 0.18, 0.6 - 0.20, 0.045])  # on it, just above, below, on floor
    obs[3, juggler.I_PADDLE_Z] = 0.0  # paddle at the floor: only the floor rule can fire
    lost = BALANCE.terminated(obs, torch.zeros(4, 3), obs)
    assert lost.tolist() == [False, False, True, True]
    assert torch.equal(BOUNCE.terminated(obs, torch.zeros(4, 3), obs), lost)


def test_episode_terminates_when_ball_falls_off():
    env = gym.make(BALANCE.env_id)
    try:
        env.reset(seed=0)
        # wrist driven hard one way: the paddle tips over and the ball falls off
        for _ in range(200):
            obs, _, terminated, truncated, _ = env.step(np.array([0.0, 0.0, 1.0], dtype=np.float32))
            if terminated:
                break
        assert terminated and not truncated, "the ball never counted as lost"
        assert obs[I_BALL_Z] < obs[juggler.I_PADDLE_Z] - juggler.LOST_BELOW_PADDLE or obs[I_BALL_Z] < 0.05
    finally:
        env.close()


# ----- physics of the ball parameters -------------------------------------------------------------------------
def measured_restitution(scale: float, drop: float) -> float:
    """Rebound / impact speed of the ball dropped on the level, immobilised paddle."""
    q = inverse_kinematics(0.5, 0.6, 0.0)
    env = immobilised_env(nominal_with(BALANCE, restitution_scale=scale), q)
    try:
        place(env, q, np.array([0.5, 0.6 + BALL_RADIUS + drop]))
        m, d = env.unwrapped.model, env.unwrapped.data
        v_in = None
        for _ in range(3000):
            mujoco.mj_step(m, d)
            touching = ball_paddle_contact(env)
            if touching and v_in is None:
                v_in = -d.qvel[4]
            if v_in is not None and not touching:
                return d.qvel[4] / v_in
        raise AssertionError("the ball never left the paddle")
    finally:
        env.close()


def test_xml_damping_has_the_nominal_restitution():
    model = mujoco.MjModel.from_xml_path(str(juggler.MODEL_PATH))
    pair = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_PAIR, "ball_paddle")
    assert juggler.restitution_of_damping(-model.pair_solref[pair, 1]) == pytest.approx(NOMINAL_RESTITUTION, abs=0.01)


@pytest.mark.parametrize("scale", [0.6, 1.0, 1.5])
def test_restitution_scale_sets_the_measured_coefficient(scale):
    measured = np.mean([measured_restitution(scale, drop) for drop in (0.3, 0.5, 0.7)])
    assert measured == pytest.approx(NOMINAL_RESTITUTION * scale, abs=0.05)


def test_friction_decides_rolling_or_sliding():
    """On a paddle tilted 40°, rolling needs μ ≥ (2/7)·tan 40° = 0.24: nominal μ = 0.3 rolls, μ = 0.15 slides."""
    tilt = math.radians(40.0)
    q = inverse_kinematics(0.5, 0.6, tilt)
    along, normal = np.array([math.cos(tilt), math.sin(tilt)]), np.array([-math.sin(tilt), math.cos(tilt)])
    spin_ratio = {}
    for scale in (0.5, 1.0):
        env = immobilised_env(nominal_with(BALANCE, friction_scale=scale), q)
        try:
            place(env, q, np.array([0.5, 0.6]) + 0.05 * along + (BALL_RADIUS + 5e-4) * normal)
            m, d = env.unwrapped.model, env.unwrapped.data
            for _ in range(150):
                mujoco.mj_step(m, d)
            mujoco.mj_kinematics(m, d)
            height = (d.qpos[3:5] - d.site("paddle").xpos[[0, 2]]) @ normal
            assert abs(height - BALL_RADIUS) < 3e-3, "the ball left the paddle surface"
            speed = np.hypot(d.qvel[3], d.qvel[4])
            assert speed > 0.3, "the ball did not run down the slope"
            spin_ratio[scale] = abs(d.qvel[5]) * BALL_RADIUS / speed  # 1 when rolling without slip
        finally:
            env.close()
    assert spin_ratio[1.0] == pytest.approx(1.0, abs=0.05)
    assert spin_ratio[0.5] < 0.85


def test_heavier_ball_loads_the_arm():
    """The same actions with the ball at rest on the paddle: a heavier ball pushes the paddle lower."""
    heights = {}
    for scale in (0.5, 1.7):
        env = gym.make(BALANCE.env_id)
        try:
            env.reset(seed=0, options={"task": nominal_with(BALANCE, ball_mass_scale=scale)})
            for _ in range(5):
                obs, *_ = env.step(np.array([0.3, 0.3, 0.0], dtype=np.float32))
            heights[scale] = obs[juggler.I_PADDLE_Z]
        finally:
            env.close()
    assert heights[0.5] - heights[1.7] > 1e-3


def recorded_actions(family, steps: int) -> np.ndarray:
    controller = JugglerController(family.name)
    env = gym.make(family.env_id)
    try:
        obs, _ = env.reset(seed=0)
        actions = []
        for _ in range(steps):
            actions.append(controller.act(obs))
            obs, *_ = env.step(actions[-1])
        return np.array(actions)
    finally:
        env.close()


def replay(family, task: dict[str, float], actions: np.ndarray) -> np.ndarray:
    env = gym.make(family.env_id)
    try:
        obs, _ = env.reset(seed=0, options={"task": task})
        out = [obs]
        for action in actions:
            obs, _, terminated, _, _ = env.step(action)
            out.append(obs)
            if terminated:
                break
        return np.array(out)
    finally:
        env.close()


@pytest.mark.parametrize("parameter", BALL_PARAMETERS)
def test_ball_parameters_change_the_outcome_of_the_same_actions(parameter):
    actions = recorded_actions(BOUNCE, 150)
    base = replay(BOUNCE, BOUNCE.nominal().as_dict(), actions)
    np.testing.assert_array_equal(base, replay(BOUNCE, BOUNCE.nominal().as_dict(), actions))  # deterministic
    for value in (0.5, 1.7):
        other = replay(BOUNCE, nominal_with(BOUNCE, **{parameter: value}), actions)
        n = min(len(base), len(other))
        gap = np.abs(other[:n, I_BALL_X : I_BALL_Z + 1] - base[:n, I_BALL_X : I_BALL_Z + 1]).max()
        # identical tasks replay bit for bit (above), so 2 cm is far beyond noise; friction acts only through slips at
        # tilted impacts and moves the ball least
        assert gap > 0.02, f"{parameter}={value} moved the ball by only {gap:.4f} m over the same actions"


def test_rebound_ordered_by_restitution_and_mass():
    """First rebound apex under the same actions: bouncier ball higher, heavier ball lower (more lost to the arm)."""
    actions = recorded_actions(BOUNCE, 40)

    def first_apex(**changes: float) -> float:
        return float(replay(BOUNCE, nominal_with(BOUNCE, **changes), actions)[:, I_BALL_Z][14:].max())

    assert first_apex(restitution_scale=0.6) + 0.1 < first_apex() < first_apex(restitution_scale=1.5) - 0.1
    assert first_apex(ball_mass_scale=0.5) > first_apex() + 0.03 > first_apex(ball_mass_scale=1.7) + 0.06


# ----- the scripted controller solves both families -----------------------------------------------------------
def scripted_episode(family, seed: int, task=None) -> dict[str, np.ndarray]:
    """One episode of the noise-free scripted controller through the collector: the buffer's episode arrays."""
    policy = make_initial_policy(family, "scripted", noise=0.0)
    collection = collect_episodes(policy, 1, family=family, tasks=[task or family.nominal()], seed=seed)
    return collection.buffer.episode(0)


def ball_apexes(episode: dict[str, np.ndarray]) -> np.ndarray:
    """The highest ball-centre height of each rise (vz > 0.3 m/s) until the ball falls (vz <= 0), in order."""
    states = np.concatenate([episode["obs"], episode["next_obs"][-1:]])
    apexes, rising, top = [], False, 0.0
    for z, vz in states[:, [I_BALL_Z, juggler.I_BALL_VZ]]:
        if vz > 0.3:
            top, rising = (max(top, z) if rising else z), True
        elif rising and vz <= 0.0:
            apexes.append(max(top, z))
            rising = False
    return np.array(apexes)


def test_controller_balances_for_a_full_episode():
    episode = scripted_episode(BALANCE, seed=0)
    assert len(episode["reward"]) == BALANCE.episode_steps and not episode["terminated"].any()
    final = episode["next_obs"][-1]
    assert math.dist(final[[I_BALL_X, I_BALL_Z]], BALANCE_TARGET) < 0.03
    assert episode["reward"].mean() > 0.9


def test_controller_balances_a_train_task():
    task = BALANCE.sample(np.random.default_rng(5), 1, "train")[0]
    episode = scripted_episode(BALANCE, seed=1, task=task)
    assert len(episode["reward"]) == BALANCE.episode_steps and not episode["terminated"].any()


def test_controller_bounces_to_the_target_apex():
    episode = scripted_episode(BOUNCE, seed=0)
    assert len(episode["reward"]) == BOUNCE.episode_steps and not episode["terminated"].any(), "ball lost"
    apexes = ball_apexes(episode)[2:]  # the first two bounces ramp up from the 1 m drop
    assert len(apexes) >= 8, f"only {len(apexes) + 2} bounces in 10 s"
    assert np.median(np.abs(apexes - BOUNCE_APEX[1])) < 0.1, apexes


def test_apexes_measured_from_the_trajectory_are_the_controllers_own():
    # The controller tracks the apexes it sees; measured on the recorded trajectory they must agree.
    controller = JugglerController("bounce")
    env = gym.make(BOUNCE.env_id, max_episode_steps=200)
    try:
        obs, _ = env.reset(seed=0)
        observations = [obs]
        for _ in range(200):
            obs, *_ = env.step(controller.act(obs))
            observations.append(obs)
    finally:
        env.close()
    states = np.array(observations)
    measured = ball_apexes({"obs": states[:-1], "next_obs": states[1:]})
    assert len(controller.apexes) >= 3
    np.testing.assert_array_equal(measured[: len(controller.apexes)], controller.apexes)


def test_controller_rejects_bad_input():
    with pytest.raises(ValueError, match="juggler mode"):
        JugglerController("throw")
    with pytest.raises(ValueError, match="shape"):
        JugglerController("balance").act(np.zeros(13))


# ----- bad task values (beyond the generic checks) ------------------------------------------------------------
@pytest.mark.parametrize("scale", [0.2, 2.0, 5.0])
def test_restitution_outside_calibrated_range_raises(scale):
    env = gym.make(BOUNCE.env_id)
    try:
        with pytest.raises(ValueError, match="restitution_scale"):
            env.reset(options={"task": nominal_with(BOUNCE, restitution_scale=scale)})
        assert env.unwrapped.task == BOUNCE.nominal()
    finally:
        env.close()


def test_bad_reset_noise_raises():
    with pytest.raises(ValueError, match="reset_noise_scale"):
        gym.make(BALANCE.env_id, reset_noise_scale=-1.0)


# ----- video --------------------------------------------------------------------------------------------------
def egl_unavailable_reason() -> str | None:
    try:
        ctx = mujoco.GLContext(16, 16)
        ctx.make_current()
        ctx.free()
    except Exception as err:  # any failure means no offscreen GL here
        return f"offscreen OpenGL unavailable (MUJOCO_GL=egl): {err!r}"
    return None


def test_film_of_the_controller_runs_through_the_collector(tmp_path, capsys):
    reason = egl_unavailable_reason()
    if reason:
        pytest.skip(reason)
    import imageio.v3 as iio

    path, collection = film_controller("bounce", tmp_path / "clip.gif", steps=6, seed=0, size=64)
    frames = iio.imread(path)
    assert frames.shape[0] == 7 and frames.shape[1:3] == (64, 64)  # reset frame + one per step
    assert frames.std() > 0 and not np.array_equal(frames[0], frames[-1])  # the ball moved
    # the filmed episode is the collector's: the noise-free controller's actions on the observations it recorded
    episode = collection.buffer.episode(0)
    assert len(episode["action"]) == 6
    controller = JugglerController("bounce")
    np.testing.assert_array_equal(episode["action"], [controller.act(o) for o in episode["obs"]])
    assert run(["--task", "balance", "--out", str(tmp_path / "b.gif"), "--steps", "2", "--size", "32"]) == 0
    assert iio.imread(tmp_path / "b.gif").shape[0] == 3
    assert "wrote" in capsys.readouterr().out


def test_film_bad_arguments(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"video path must end in .gif or .mp4, got '.*clip.avi'"):
        film_controller("bounce", tmp_path / "clip.avi", steps=2)
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        film_controller("bounce", tmp_path / "clip.gif", steps=0)
    with pytest.raises(ValueError, match="unknown juggler mode 'throw'"):
        film_controller("throw", tmp_path / "clip.gif", steps=2)
    assert run(["--out", str(tmp_path / "clip.avi"), "--steps", "2"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mbmeta juggler-video: error: video path must end in .gif")
    assert not list(tmp_path.iterdir()), "nothing is written for bad arguments"


def test_controller_imports_no_juggler_environment_module():
    # The juggler family builds the controller, so the controller must not import mbmeta.envs.juggler (no cycle).
    import ast
    from pathlib import Path

    source = Path(juggler.__file__).with_name("juggler_controller.py").read_text()
    imported = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom) and node.module}
    assert "mbmeta.envs.juggler_geometry" in imported
    assert not imported & {"mbmeta.envs.juggler", "mbmeta.envs"}
    assert isinstance(BALANCE.make_controller(), JugglerController)
