"""The learning curve of a baseline: test-task figures against environment steps, one CSV row per evaluation.

``learning_curve.csv`` columns (:data:`CURVE_COLUMNS`): ``env_steps`` (training environment steps so far),
``train_episodes``, ``wall_seconds`` (training and evaluation so far), ``episodes`` (evaluation episodes of the
point), ``return_mean/std/min/max``, ``length_mean/min`` (episode steps: the balance time on the juggler, where an
episode ends when the ball is lost) and ``success_rate`` (empty where the family defines no success). The file is
rewritten atomically after every evaluation, so a crash leaves the curve up to the previous point.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import numpy as np

from mbmeta.data.atomic import atomic_write
from mbmeta.evaluation.episodes import EpisodeRecord

CURVE_FILE = "learning_curve.csv"


@dataclass(frozen=True)
class CurvePoint:
    """One evaluation of the policy during training (see the module docstring for the fields)."""

    env_steps: int
    train_episodes: int
    wall_seconds: float
    episodes: int
    return_mean: float
    return_std: float
    return_min: float
    return_max: float
    length_mean: float
    length_min: float
    success_rate: float | None


CURVE_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(CurvePoint))


def curve_point(
    records: Sequence[EpisodeRecord], *, env_steps: int, train_episodes: int, wall_seconds: float
) -> CurvePoint:
    """Summarise one evaluation's episodes (``records``, at least one) as a point of the curve."""
    if not records:
        raise ValueError("an evaluation needs at least one episode")
    returns = np.array([r.episode_return for r in records], dtype=np.float64)
    lengths = np.array([r.length for r in records], dtype=np.float64)
    successes = [r.success for r in records if r.success is not None]
    return CurvePoint(
        env_steps=int(env_steps),
        train_episodes=int(train_episodes),
        wall_seconds=float(wall_seconds),
        episodes=len(records),
        return_mean=float(returns.mean()),
        return_std=float(returns.std()),
        return_min=float(returns.min()),
        return_max=float(returns.max()),
        length_mean=float(lengths.mean()),
        length_min=float(lengths.min()),
        success_rate=float(np.mean(successes)) if successes else None,
    )


def write_curve(points: Sequence[CurvePoint], path: str | Path) -> Path:
    """Write the curve as CSV (header :data:`CURVE_COLUMNS`), atomically; returns the path."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(CURVE_COLUMNS)
    for point in points:
        writer.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in astuple(point)])
    return atomic_write(path, lambda f: f.write(text.getvalue().encode()))


def read_curve(path: str | Path) -> list[CurvePoint]:
    """Read a curve written by :func:`write_curve`.

    Raises:
        ValueError: the file's header is not :data:`CURVE_COLUMNS` (not a learning curve, or another version).
    """
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or tuple(rows[0]) != CURVE_COLUMNS:
        raise ValueError(f"{path} is not a learning curve: its header is not {','.join(CURVE_COLUMNS)}")
    types = {f.name: f.type for f in fields(CurvePoint)}
    points = []
    for row in rows[1:]:
        values = {}
        for name, cell in zip(CURVE_COLUMNS, row, strict=True):
            if cell == "":
                values[name] = None
            else:
                values[name] = int(cell) if types[name] == "int" else float(cell)
        points.append(CurvePoint(**values))
    return points


def steps_to_reach(points: Sequence[CurvePoint], column: str, threshold: float) -> int | None:
    """The first ``env_steps`` at which ``column`` (e.g. ``length_mean``) reached ``threshold``; None if never.

    Example: ``steps_to_reach(read_curve(path), "length_mean", 450)``, the environment steps a juggler baseline
    needed to keep the ball for 450 of 500 steps on average over the test tasks.
    """
    if column not in CURVE_COLUMNS:
        raise ValueError(f"unknown curve column {column!r}; the columns are {', '.join(CURVE_COLUMNS)}")
    for point in points:
        value = getattr(point, column)
        if value is not None and not math.isnan(value) and value >= threshold:
            return point.env_steps
    return None
