"""The wall time of each committed iteration of a ``mbmeta train`` run, kept beside it in ``iteration_times.csv``.

One row per iteration (0: the initial episodes; then fit + collection), written right after the iteration's commit,
so a run resumed over several stops keeps every finished iteration's time. The sweep's stamp only knows the wall time
of a training's last part; ``mbmeta sweep --status`` reads this file to estimate what a training costs and what a
stopped one still needs. An iteration interrupted before its commit is redone and leaves no row; a redone iteration
replaces its row. The file is provenance, not run data: it is not part of ``state.json`` (which stays the same
whether or not a run was resumed), and a damaged one is left as it is.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path

from mbmeta.data.atomic import atomic_write_csv

TIMES_FILE = "iteration_times.csv"
COLUMNS = ("iteration", "seconds", "fit_s", "collect_s")


def read_iteration_times(run_dir: str | Path) -> dict[int, float]:
    """Each recorded iteration's wall time in seconds, by iteration; {} when the file is absent.

    Raises:
        ValueError: the file exists but is not a table of these columns (names the file).
    """
    path = Path(run_dir) / TIMES_FILE
    if not path.is_file():
        return {}
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return {int(row["iteration"]): float(row["seconds"]) for row in rows}
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a table of {', '.join(COLUMNS)} ({err})") from err


def record_iteration_time(
    run_dir: str | Path,
    iteration: int,
    seconds: float,
    log: Callable[[str], None],
    *,
    fit_s: float = math.nan,
    collect_s: float = math.nan,
) -> None:
    """Add (or replace) an iteration's row: its wall time, and its fit and collection parts where it has them.

    Rows of later iterations (left by a run rolled back to an earlier commit) are dropped. A damaged file is left as
    it is; the problem is passed to ``log`` and this time is not recorded.
    """
    path = Path(run_dir) / TIMES_FILE
    try:
        with open(path, newline="") if path.is_file() else io.StringIO() as f:
            rows = [row for row in csv.DictReader(f) if int(row["iteration"]) < iteration]
        if any(set(row) != set(COLUMNS) for row in rows):
            raise ValueError("other columns")
    except (OSError, KeyError, TypeError, ValueError) as err:
        log(f"warning: {path} is unreadable ({err}); left as it is, this iteration's time is not recorded")
        return
    rows.append({"iteration": iteration, "seconds": seconds, "fit_s": fit_s, "collect_s": collect_s})
    atomic_write_csv(path, COLUMNS, rows)


def training_seconds(times: Mapping[int, float], iterations: int) -> float | None:
    """A whole training's wall time from its iterations' times, or None when no iteration ≥ 1 is recorded.

    Iterations 1..``iterations`` not recorded (run before this file existed, or killed between commit and record)
    count at the mean of the recorded ones; iteration 0 (one collection, no fit) counts only when recorded.
    """
    fitted = [times[i] for i in range(1, iterations + 1) if i in times]
    if not fitted:
        return None
    return times.get(0, 0.0) + sum(fitted) + statistics.fmean(fitted) * (iterations - len(fitted))


def mean_iteration_seconds(times: Mapping[int, float], completed: int) -> float | None:
    """The mean wall time of the recorded iterations 1..``completed`` (fit + collection), or None if none is."""
    fitted = [seconds for iteration, seconds in times.items() if 1 <= iteration <= completed]
    return statistics.fmean(fitted) if fitted else None
