"""Film one episode of a policy as a GIF or MP4 (offscreen MuJoCo rendering; needs e.g. ``MUJOCO_GL=egl``).

The episode runs through the one episode loop, :func:`~mbmeta.control.collection.collect_episodes`, whose
``on_step`` hook renders a frame after the reset and after every step: the filmed episode is exactly what the
collector would record. With a caption, every frame carries it (e.g. family, method and task) and the step and
return so far, burned into the pixels with Pillow (which writes the GIFs anyway).
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
from mbmeta.models.latent_range import LatentRange
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
    fps: float | None = None,
    pass_task: bool = False,
    caption: str | None = None,
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
        fps: frames per second of the video; None plays it in real time (the env's ``render_fps``, one frame per
            step).
        pass_task: give the policy the true task (an oracle model).
        caption: text (lines separated by newlines) written at the top of every frame, above a line with the step
            and the return so far; None films the bare frames.

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
    control_rate: list[float] = []

    def render(envs: VectorEnv) -> None:
        frames.append(envs.render()[0])
        if not control_rate:
            control_rate.append(float(envs.metadata.get("render_fps") or 20))

    collection = collect_episodes(
        policy, 1, family=family, tasks=[task], seed=seed, env_kwargs=env_kwargs, pass_task=pass_task, on_step=render
    )
    if caption is not None:
        returns = np.concatenate([[0.0], np.cumsum(collection.buffer.reward, dtype=np.float64)])
        frames = [
            burn_text(frame, f"{caption}\nstep {t}  return {returns[min(t, len(returns) - 1)]:.1f}")
            for t, frame in enumerate(frames)
        ]
    out.parent.mkdir(parents=True, exist_ok=True)
    fps = fps or control_rate[0]
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


def burn_text(frame: np.ndarray, text: str) -> np.ndarray:
    """A copy of an RGB frame ``[height, width, 3]`` (uint8) with ``text`` in white on a dark band at the top.

    The font scales with the frame (about 1/20 of its width); lines longer than the frame are cut, not wrapped.
    """
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(np.ascontiguousarray(frame[..., :3]))
    size = max(8, image.width // 20)
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one fixed bitmap size
        font = ImageFont.load_default()
    lines = text.splitlines()
    height = (size + 3) * len(lines) + 4
    band = Image.new("RGBA", (image.width, height), (0, 0, 0, 150))
    image.paste(band, (0, 0), band)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((4, 2 + i * (size + 3)), line, fill=(255, 255, 255), font=font)
    return np.asarray(image)


def video_caption(family: str, method: str, task: TaskParams | dict[str, float]) -> str:
    """The caption of an evaluation video: family and method, then the task's parameters."""
    values = task.as_dict() if isinstance(task, TaskParams) else dict(task)
    return f"{family} | {method}\n" + " ".join(f"{k}={v:g}" for k, v in values.items())


def record_video(
    module: MetaDynamicsModule,
    family: TaskFamily,
    task: TaskParams,
    path: str | Path,
    *,
    agent: AgentSettings | None = None,
    seed: int = 0,
    size: int = 240,
    fps: float | None = None,
    method: str | None = None,
    latent_range: LatentRange | None = None,
) -> tuple[Path, float]:
    """Film one episode of the MPC agent with this model on ``task`` (see :func:`film_episode`).

    Every frame carries the family, the method (default: the model's adaptation), the task and the return so far.
    ``latent_range`` is required when ``agent.bound_latent`` (as in :func:`~mbmeta.control.factory.make_agent`).

    Returns:
        The path written and the episode's return.
    """
    mpc = make_agent(module.dynamics, family, agent or AgentSettings(), seed=seed, latent_range=latent_range)
    oracle = module.hparams.adaptation == "oracle"
    caption = video_caption(family.name, method or module.hparams.adaptation, task)
    out, filmed = film_episode(
        mpc, family, task, path, seed=seed, size=size, fps=fps, pass_task=oracle, caption=caption
    )
    return out, float(filmed.episodes[0].episode_return)
