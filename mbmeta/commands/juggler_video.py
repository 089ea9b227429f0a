"""``mbmeta juggler-video``: film the scripted juggler controller (balance or bounce) as a GIF or MP4.

The episode runs through the one episode loop (:func:`mbmeta.evaluation.video.film_episode` over
:func:`~mbmeta.control.collection.collect_episodes`), with the controller as a noise-free collection policy: what
``mbmeta train --loop.initial_policy scripted --loop.initial_noise 0`` would record.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from mbmeta.commands import one_line_errors
from mbmeta.control.collection import Collection
from mbmeta.control.factory import make_initial_policy
from mbmeta.envs import TaskParams, get_family
from mbmeta.envs.juggler_controller import FAMILY_NAMES
from mbmeta.evaluation.video import film_episode


def film_controller(
    mode: str,
    path: str | Path,
    steps: int,
    *,
    seed: int = 0,
    task: TaskParams | Mapping[str, float] | None = None,
    size: int = 320,
) -> tuple[Path, Collection]:
    """Film one episode of the scripted controller: ``steps + 1`` frames in real time (fewer if the ball is lost).

    Args:
        mode: ``"balance"`` or ``"bounce"`` (or the family names ``"juggler_balance"`` / ``"juggler_bounce"``).
        path: output ``.gif`` or ``.mp4``.
        steps: env steps to record (the episode's time limit).
        seed: the environment's reset seed.
        task: task parameters (nominal when None).
        size: frame width and height in pixels.

    Returns:
        The path written and the collected episode.

    Raises:
        ValueError: unknown mode, bad path or ``steps`` < 1, or an invalid task.
    """
    name = FAMILY_NAMES.get(mode, mode)
    if name not in FAMILY_NAMES.values():
        raise ValueError(f"unknown juggler mode {mode!r}; valid modes are {sorted(FAMILY_NAMES)}")
    family = get_family(name)
    policy = make_initial_policy(family, "scripted", noise=0.0, seed=seed)
    task = family.nominal() if task is None else family.validate(task)
    return film_episode(policy, family, task, path, steps=steps, seed=seed, size=size)


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``mbmeta juggler-video``."""
    from mbmeta.commands.parsing import ShortArgumentParser  # short parse errors

    parser = ShortArgumentParser(
        prog="mbmeta juggler-video", description="Record the scripted juggler controller as a GIF or MP4."
    )
    parser.add_argument("--task", choices=sorted(FAMILY_NAMES), default="balance", help="which juggler family")
    parser.add_argument("--out", default=None, help="output .gif or .mp4 (default: juggler_<task>.gif)")
    parser.add_argument("--steps", type=int, default=500, help="env steps to record (dt = 0.02 s)")
    parser.add_argument("--seed", type=int, default=0, help="reset seed")
    parser.add_argument("--size", type=int, default=320, help="frame width and height in pixels")
    return parser


@one_line_errors("juggler-video")
def run(argv: list[str]) -> int:
    """Parse ``argv`` and write the video; returns the exit code (1 with a one-line message for a bad value)."""
    args = build_parser().parse_args(argv)
    try:
        out, collection = film_controller(
            args.task, args.out or f"juggler_{args.task}.gif", args.steps, seed=args.seed, size=args.size
        )
    except (ValueError, RuntimeError) as err:
        print(f"mbmeta juggler-video: error: {err}", file=sys.stderr, flush=True)
        return 1
    episode = collection.episodes[0]
    print(f"wrote {out} ({episode.length} steps, return {episode.episode_return:.1f})")
    return 0
