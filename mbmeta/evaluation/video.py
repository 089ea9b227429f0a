"""Film one episode of a policy as a GIF or MP4 (offscreen MuJoCo rendering; needs e.g. ``MUJOCO_GL=egl``).

The episode runs through the one episode loop, :func:`~mbmeta.control.collection.collect_episodes`, whose
``on_step`` hook renders a frame after the reset and after every step: the filmed episode is exactly what the
collector would record.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from gymnasium.vector import VectorEnv

from mbmeta.control.collection import Collection, collect_episodes
from mbmeta.control.factory import make_agent
from mbmeta.control.policy import Policy
from mbmeta.control.settings import AgentSettings
from mbmeta.envs.family import TaskFamily
from mbmeta.training.module import MetaDynamicsModule
from mbmeta.types import TaskParams

VIDEO_SUFFIXES = (".gif", ".mp4")


def film_episode(
    policy: Policy | Callable[[np.ndarray], object],
    family: TaskFamily,
    task: TaskParams,
    path: str | Path,
    *,
    steps: int | None = None,
    seed: int = 0,
    size: int = 240,
    fps: int = 20,
    pass_task: bool = False,
) -> tuple[Path, Collection]:
    """Run one episode of ``policy`` on ``task`` and write its frames (the reset's and one per step) as a video.

    Args:
        policy: any policy :func:`~mbmeta.control.collection.collect_episodes` accepts.
        family: the task family (builds the environment).
        task: the task of the episode.
        path: output file: ``.gif`` (Pillow, always available) or ``.mp4`` (needs ``imageio[ffmpeg]`` or
            ``imageio[pyav]``).
        steps: cap on the episode's steps (its time limit); None keeps the family's.
        seed: the environment's reset seed.
        size: frame width and height in pixels.
        fps: frames per second of the video.
        pass_task: give the policy the true task (an oracle model).

    Returns:
        The path written and the collection (one episode in its buffer).

    Raises:
        ValueError: a path that is not ``.gif``/``.mp4``, or ``steps`` < 1 (before anything runs).
        RuntimeError: ``.mp4`` without an MP4 writer installed.
    """
    import imageio.v3 as iio

    out = Path(path)
    if out.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"video path must end in .gif or .mp4, got {str(path)!r}")
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    env_kwargs: dict[str, object] = {"render_mode": "rgb_array", "width": size, "height": size}
    if steps is not None:
        env_kwargs["max_episode_steps"] = steps
    frames: list[np.ndarray] = []

    def render(envs: VectorEnv) -> None:
        frames.append(envs.render()[0])

    collection = collect_episodes(
        policy, 1, family=family, tasks=[task], seed=seed, env_kwargs=env_kwargs, pass_task=pass_task, on_step=render
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".gif":
        iio.imwrite(out, np.stack(frames), duration=1000 / fps, loop=0)
    else:
        try:
            iio.imwrite(out, np.stack(frames), fps=fps)
        except (OSError, ImportError) as err:  # imageio has no MP4 backend unless ffmpeg or PyAV is installed
            raise RuntimeError(
                f"cannot write {str(path)!r}: MP4 needs `pip install imageio[ffmpeg]` or `imageio[pyav]`; "
                "write a .gif instead"
            ) from err
    return out, collection


def record_video(
    module: MetaDynamicsModule,
    family: TaskFamily,
    task: TaskParams,
    path: str | Path,
    *,
    agent: AgentSettings | None = None,
    seed: int = 0,
    size: int = 240,
    fps: int = 20,
) -> Path:
    """Film one episode of the MPC agent with this model on ``task`` (see :func:`film_episode`)."""
    mpc = make_agent(module.dynamics, family, agent or AgentSettings(), seed=seed)
    oracle = module.hparams.adaptation == "oracle"
    out, _ = film_episode(mpc, family, task, path, seed=seed, size=size, fps=fps, pass_task=oracle)
    return out
