"""The learning curve of a ``mbmeta train`` run, on disk beside it: one CSV row per iteration and a PNG plot.

``learning_curve.csv`` holds, per completed iteration, the episodes collected in it (iteration 0: the initial
policy's; then the MPC agent's on newly sampled train tasks): their mean, min and max return, mean length, success
rate where the family defines one, and the buffer's size after it. ``learning_curve.png`` plots the mean return
against the iteration with the min-max band. Both are rewritten atomically after every committed iteration; a
redone iteration (after a kill) replaces its row, so the file never holds an iteration twice. They are a view of
what W&B also logs (``collect/*``), readable without W&B.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path

from mbmeta.data.atomic import atomic_write_csv
from mbmeta.evaluation.reports import plot_learning_curve

CURVE_FILE = "learning_curve.csv"
PLOT_FILE = "learning_curve.png"
COLUMNS = ("iteration", "policy", "episodes", "transitions", "return_mean", "return_min", "return_max",
           "length_mean", "success_rate")  # fmt: skip
COUNT_COLUMNS = ("iteration", "episodes", "transitions")  # whole numbers: rewritten as written ("8", not "8.0")


def read_learning_curve(run_dir: str | Path) -> list[dict[str, float | int | str]]:
    """The rows of ``learning_curve.csv`` (counts as ints, other numbers as floats, ``policy`` as text), or []."""
    path = Path(run_dir) / CURVE_FILE
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: _value(k, v) for k, v in row.items()} for row in csv.DictReader(f)]


def _value(column: str, text: str) -> float | int | str:
    if column == "policy":
        return text
    number = _number(text)
    # Older files wrote the counts of all but their last row as floats ("8.0"); read them back as ints.
    return int(number) if column in COUNT_COLUMNS and number.is_integer() else number


def record_iteration(
    run_dir: str | Path,
    iteration: int,
    metrics: Mapping[str, float],
    *,
    policy: str,
    episodes: int,
    transitions: int,
    title: str = "",
) -> Path:
    """Add (or replace) an iteration's row and redraw the plot; returns the CSV's path.

    Args:
        run_dir: the run directory.
        iteration: the completed iteration (0: the initial episodes).
        metrics: :func:`~mbmeta.evaluation.metrics.episode_metrics` of the iteration's episodes (``collect/*``).
        policy: what collected them (``random``, ``scripted``, ``mpc``).
        episodes: how many episodes were collected.
        transitions: transitions in the buffer after the iteration.
        title: the plot's title.
    """
    run_dir = Path(run_dir)
    rows = [row for row in read_learning_curve(run_dir) if int(row["iteration"]) < iteration]
    new = {"iteration": iteration, "policy": policy, "episodes": episodes, "transitions": transitions}
    for name in COLUMNS[4:]:
        new[name] = metrics.get(f"collect/{name}", math.nan)
    rows.append(new)
    path = atomic_write_csv(run_dir / CURVE_FILE, COLUMNS, rows)
    plot_learning_curve(rows, run_dir / PLOT_FILE, title=title)
    return path


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan
