"""Videos run through the one episode loop: film_episode is collect_episodes plus a rendering hook."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from mbmeta.control.agent import MPCAgent
from mbmeta.control.collection import collect_episodes
from mbmeta.envs import get_family
from mbmeta.evaluation.video import film_episode
from mbmeta.planners import CEMPlanner
from mbmeta.types import Prediction

FAMILY = get_family("pendulum")


def offscreen_gl() -> bool:
    try:
        ctx = mujoco.GLContext(16, 16)
        ctx.make_current()
        ctx.free()
    except Exception:  # any failure means no offscreen GL here
        return False
    return True


class TaskOracle:
    """A MetaDynamics that needs the true task (an oracle): predicts the state decays by the task's mass."""

    ensemble_size = 1

    def adapt(self, context, mask=None, task=None):
        assert task is not None, "the oracle must be given the task"

        class Adapted:
            ensemble_size = 1

            def __call__(self, obs, action):
                scale = task[:, :1].reshape(1, -1, *([1] * (obs.ndim - 2)))
                mean = obs * (0.9 + 0.05 * scale) + 0.1 * action.sum(-1, keepdim=True)
                return Prediction(mean, mean * 0, None)

        return Adapted()


def agent() -> MPCAgent:
    planner = CEMPlanner([-2.0], [2.0], population=16, elites=4, iterations=2)
    return MPCAgent(TaskOracle(), planner, FAMILY.reward, horizon=4, context_size=3, seed=1)


@pytest.mark.skipif(not offscreen_gl(), reason="offscreen OpenGL unavailable (MUJOCO_GL=egl)")
def test_the_film_is_the_collectors_episode_with_one_frame_per_step(tmp_path):
    import imageio.v3 as iio

    task = FAMILY.sample(np.random.default_rng(2), 1, "test")[0]
    path, filmed = film_episode(
        agent(), FAMILY, task, tmp_path / "v" / "clip.gif", steps=5, seed=3, size=48, pass_task=True
    )
    frames = iio.imread(path)
    assert frames.shape[:3] == (6, 48, 48)  # the reset frame + one per step
    assert not np.array_equal(frames[0], frames[-1])
    # rendering changes nothing: the same agent and seed collected without the hook act identically
    plain = collect_episodes(
        agent(), 1, family=FAMILY, tasks=[task], seed=3, pass_task=True, env_kwargs={"max_episode_steps": 5}
    )
    assert np.array_equal(filmed.buffer.action, plain.buffer.action)
    assert np.array_equal(filmed.buffer.obs, plain.buffer.obs)
    assert filmed.episodes[0].task == task.as_dict()


def test_bad_paths_and_steps_fail_before_anything_runs(tmp_path):
    never = MPCAgent(TaskOracle(), CEMPlanner([-2.0], [2.0]), FAMILY.reward, horizon=2, context_size=1)
    task = FAMILY.nominal()
    with pytest.raises(ValueError, match=r"video path must end in .gif or .mp4, got '.*clip.avi'"):
        film_episode(never, FAMILY, task, tmp_path / "clip.avi")
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        film_episode(never, FAMILY, task, tmp_path / "clip.gif", steps=0)
    assert never.plan_stats.calls == 0 and not list(tmp_path.iterdir())


def test_burned_text_changes_only_the_band_at_the_top():
    from mbmeta.evaluation.video import burn_text

    frame = np.full((96, 96, 3), 128, dtype=np.uint8)
    one, other = burn_text(frame, "pendulum | context\nstep 1  return -1.0"), burn_text(frame, "x\nstep 2  return 5")
    assert one.shape == frame.shape and one.dtype == np.uint8
    assert one[: one.shape[0] // 2].min(axis=-1).max() > 200  # white text was drawn on the dark band
    band = one.shape[0] // 2  # two lines of ~1/20-width text fit in the top half
    assert np.array_equal(one[band:], frame[band:]) and not np.array_equal(one[:band], other[:band])
    assert np.array_equal(frame, np.full((96, 96, 3), 128, dtype=np.uint8))  # the input is not changed


@pytest.mark.skipif(not offscreen_gl(), reason="offscreen OpenGL unavailable (MUJOCO_GL=egl)")
def test_a_captioned_film_shows_the_caption_and_the_running_return(tmp_path):
    import imageio.v3 as iio

    from mbmeta.evaluation.video import burn_text

    task = FAMILY.sample(np.random.default_rng(2), 1, "test")[0]
    kwargs = dict(steps=3, seed=3, size=64, pass_task=True)
    plain, _ = film_episode(agent(), FAMILY, task, tmp_path / "plain.gif", **kwargs)
    path, filmed = film_episode(agent(), FAMILY, task, tmp_path / "caption.gif", caption="pendulum | oracle", **kwargs)
    bare, captioned = iio.imread(plain), iio.imread(path)
    returns = np.concatenate([[0.0], np.cumsum(filmed.buffer.reward, dtype=np.float64)])
    for t in range(len(bare)):  # each frame: its own step and return so far
        expected = burn_text(bare[t], f"pendulum | oracle\nstep {t}  return {returns[t]:.1f}")
        assert np.abs(captioned[t].astype(int) - expected.astype(int)).mean() < 2  # GIF palette quantisation
        assert np.abs(captioned[t].astype(int) - bare[t].astype(int)).mean() > 2


@pytest.mark.skipif(not offscreen_gl(), reason="offscreen OpenGL unavailable (MUJOCO_GL=egl)")
def test_a_film_plays_in_real_time_unless_told_otherwise(tmp_path):
    from PIL import Image

    from mbmeta.control.factory import make_initial_policy

    def frame_ms(path):
        with Image.open(path) as gif:
            return gif.info["duration"]

    servo = get_family("juggler_balance_servo")  # 25 Hz control: one frame per 0.04 s step
    policy = make_initial_policy(servo, "random", seed=0)
    path, _ = film_episode(policy, servo, servo.nominal(), tmp_path / "servo.gif", steps=2, size=32)
    assert frame_ms(path) == 40
    path, _ = film_episode(agent(), FAMILY, FAMILY.nominal(), tmp_path / "p.gif", steps=2, size=32, pass_task=True)
    assert frame_ms(path) == 50  # the pendulum's dt = 0.05 s
    path, _ = film_episode(policy, servo, servo.nominal(), tmp_path / "fast.gif", steps=2, size=32, fps=50)
    assert frame_ms(path) == 20
