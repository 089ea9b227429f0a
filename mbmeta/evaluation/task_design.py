"""Which tasks of a discrete grid to evaluate on when fewer than all are wanted.

Two designs:

- ``balanced`` (the default): a subsample in which every parameter takes each of its values equally often (as far
  as the count allows) and the parameters vary independently of each other — the best of a few hundred seeded
  Latin-hypercube draws, scored by marginal imbalance, then by the largest correlation between two parameters.
- ``even``: evenly spaced rows of the lexicographic grid (the design of the experiments reported before the balanced
  one existed). On a grid of several parameters it ties them together: 8 of the 4⁴ Juggler test tasks put the
  lowest ball mass with the lowest gear scale, and so on, so an effect of one cannot be told from the other.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import numpy as np

TaskDesign = Literal["balanced", "even"]
TASK_DESIGNS: tuple[str, ...] = ("balanced", "even")
DRAWS = 256  # candidate subsamples scored per balanced design


def subsample_grid(grid: Sequence[tuple], count: int, design: TaskDesign, seed: int = 0) -> list[int]:
    """Indices of ``count`` rows of ``grid``, in grid order.

    Args:
        grid: the task grid, one tuple of parameter values per task (all of equal length), no duplicates.
        count: rows wanted; at least the whole grid returns every index.
        design: ``balanced`` or ``even`` (see the module docstring).
        seed: seeds the balanced design's draws (the same seed gives the same rows).

    Raises:
        ValueError: an unknown design, or ``count`` < 1.
    """
    if design not in TASK_DESIGNS:
        raise ValueError(f"task design must be one of {', '.join(TASK_DESIGNS)}, got {design!r}")
    if count < 1:
        raise ValueError(f"task count must be >= 1, got {count}")
    if count >= len(grid):
        return list(range(len(grid)))
    if design == "even":
        return sorted({int(i) for i in np.linspace(0, len(grid) - 1, count).round()})
    return _balanced(grid, count, np.random.default_rng(seed))


def _balanced(grid: Sequence[tuple], count: int, rng: np.random.Generator) -> list[int]:
    """The best-scoring of :data:`DRAWS` seeded candidate subsamples (see :func:`design_score`)."""
    levels = [sorted(set(column)) for column in zip(*grid, strict=True)]
    codes = np.array([[lv.index(v) for lv, v in zip(levels, row, strict=True)] for row in grid])  # (tasks, params)
    index = {tuple(row): i for i, row in enumerate(codes.tolist())}
    factorial = len(grid) == int(np.prod([len(lv) for lv in levels]))
    best: tuple[tuple[float, float], list[int]] | None = None
    for _ in range(DRAWS):
        picks = _latin_draw(levels, count, index, rng) if factorial else None
        if picks is None:  # a union of regions, or a draw that repeated a task: any distinct rows
            picks = sorted(int(i) for i in rng.choice(len(grid), count, replace=False))
        score = design_score(codes[picks], [len(lv) for lv in levels])
        if best is None or score < best[0]:
            best = (score, picks)
    assert best is not None
    return best[1]


def _latin_draw(levels: list[list], count: int, index: dict[tuple, int], rng: np.random.Generator) -> list[int] | None:
    """One Latin-hypercube draw on a full factorial grid; None when two of its rows coincide.

    Each parameter's values are spread evenly over the rows and shuffled independently of the other parameters.
    """
    columns = []
    for values in levels:
        m = len(values)
        column = rng.choice(m, count, replace=False) if count < m else np.resize(rng.permutation(m), count)
        columns.append(rng.permutation(column))
    rows = {index[row] for row in zip(*(c.tolist() for c in columns), strict=True)}
    return sorted(rows) if len(rows) == count else None


def design_score(codes: np.ndarray, n_levels: Sequence[int]) -> tuple[float, float]:
    """``(imbalance, largest |correlation|)`` of a subsample; smaller is better, compared in that order.

    Args:
        codes: ``(rows, params)`` level index of each row's value of each parameter.
        n_levels: number of values each parameter has in the grid.

    Imbalance: for each parameter, the squared deviations of its value counts from an equal share, summed. The
    correlation is Pearson's between two parameters' level indices (0 where a parameter is constant).
    """
    rows = codes.shape[0]
    imbalance = 0.0
    for j, m in enumerate(n_levels):
        counts = np.bincount(codes[:, j], minlength=m)
        imbalance += float(((counts - rows / m) ** 2).sum()) if rows >= m else float((counts > 1).sum())
    worst = 0.0
    for a, b in itertools.combinations(range(codes.shape[1]), 2):
        x, y = codes[:, a].astype(float), codes[:, b].astype(float)
        if x.std() > 0 and y.std() > 0:
            worst = max(worst, abs(float(np.corrcoef(x, y)[0, 1])))
    return round(imbalance, 9), round(worst, 9)
