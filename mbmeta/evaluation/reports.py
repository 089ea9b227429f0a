"""Reports of an evaluation: summaries per method and task, JSON/CSV files, the prediction-error plot, W&B."""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from mbmeta.data.atomic import atomic_write
from mbmeta.evaluation.episodes import EpisodeRecord
from mbmeta.provenance import software_versions


def summarise(records: Sequence[EpisodeRecord]) -> dict[str, dict[str, tuple[float, float, int]]]:
    """``method -> {task label or "overall" -> (mean return, std, episodes)}``."""
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        groups[r.method][task_label(r.task)].append(r.episode_return)
        groups[r.method]["overall"].append(r.episode_return)
    return {
        method: {label: (float(np.mean(v)), float(np.std(v)), len(v)) for label, v in by_task.items()}
        for method, by_task in groups.items()
    }


def success_rates(records: Sequence[EpisodeRecord]) -> dict[str, dict[str, float]]:
    """``method -> {task label or "overall" -> fraction of successful episodes}``.

    Only methods whose episodes define success appear (empty when the family defines none).
    """
    groups: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.success is not None:
            groups[r.method][task_label(r.task)].append(r.success)
            groups[r.method]["overall"].append(r.success)
    return {method: {label: float(np.mean(v)) for label, v in by_task.items()} for method, by_task in groups.items()}


def measure_means(records: Sequence[EpisodeRecord]) -> dict[str, dict[str, float]]:
    """``method -> {measure -> mean over the method's episodes that have it}`` (``TaskFamily.measures``).

    Only methods whose episodes carry measures appear (empty when the family defines none).
    """
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        for name, value in r.measures.items():
            groups[r.method][name].append(value)
    return {method: {name: float(np.mean(v)) for name, v in by_name.items()} for method, by_name in groups.items()}


MEASURE_PREFIX = "measure."
"""Prefix of the measure columns of ``results.csv`` and the W&B table (``TaskFamily.measures``)."""


def measure_names(records: Sequence[EpisodeRecord]) -> list[str]:
    """The measures any record carries, sorted."""
    return sorted({name for r in records for name in r.measures})


def task_label(task: dict[str, float]) -> str:
    """Short text for a task: ``mass=0.2 length=1.6``."""
    return " ".join(f"{k}={v:g}" for k, v in task.items())


TASK_PREFIX = "task."
"""Prefix of the task-parameter columns of ``results.csv`` and the W&B table: a parameter may share a name with an
episode column (the pendulum's ``length`` and the episode's ``length``)."""


def task_columns(names: Sequence[str]) -> list[str]:
    """Column names of task parameters: ``task.mass``, ``task.length``, ..."""
    return [f"{TASK_PREFIX}{name}" for name in names]


def write_results(records: Sequence[EpisodeRecord], out_dir: str | Path, extra: dict[str, Any] | None = None) -> None:
    """Write ``results.json`` (records, summary, software versions, extra) and ``results.csv`` (a row per episode).

    The CSV's columns: ``method, task_id, task.<parameter>..., seed, episode_return, length, terminated, success,
    measure.<name>...`` (``length``: the episode's steps; task parameters carry the ``task.`` prefix, the family's
    measures the ``measure.`` prefix, empty where an episode has none). Each file is written atomically: an
    interruption leaves the previous file or the new one.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "episodes": [asdict(r) for r in records],
        "summary": {
            m: {k: dict(zip(("mean", "std", "n"), v, strict=True)) for k, v in s.items()}
            for m, s in summarise(records).items()
        },
        "success_rate": success_rates(records),
        "measure_mean": measure_means(records),
        "software": software_versions(),  # what the numbers were measured with (mbmeta.provenance)
        **(extra or {}),
    }
    atomic_write(out / "results.json", lambda f: f.write(json.dumps(payload, indent=2, default=_json_default).encode()))
    names = sorted({k for r in records for k in r.task})
    text = io.StringIO()
    writer = csv.writer(text)
    header = ["method", "task_id", *task_columns(names), "seed", "episode_return", "length", "terminated"]
    measures = measure_names(records)
    writer.writerow([*header, "success", *(MEASURE_PREFIX + m for m in measures)])
    for r in records:
        row = [r.method, r.task_id, *(r.task.get(n, math.nan) for n in names)]
        success = "" if r.success is None else int(r.success)  # empty: the family defines no success
        values = (f"{r.measures[m]:g}" if m in r.measures else "" for m in measures)
        writer.writerow([*row, r.seed, f"{r.episode_return:.4f}", r.length, int(r.terminated), success, *values])
    atomic_write(out / "results.csv", lambda f: f.write(text.getvalue().encode()))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def plot_prediction_error(curves: dict[str, np.ndarray], path: str | Path, title: str = "") -> Path:
    """Line plot of prediction error against horizon, one line per method (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    for method, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", label=method)
    ax.set_xlabel("prediction horizon (steps)")
    ax.set_ylabel("MSE (units of the test data's obs std)")
    ax.set_yscale("log")
    ax.set_title(title or "multi-step prediction error on test tasks")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_learning_curve(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Mean episode return per iteration with the min-max band (PNG, written atomically).

    Args:
        rows: one mapping per iteration with ``iteration``, ``return_mean``, ``return_min``, ``return_max`` and
            ``policy`` (iteration 0's policy names the first point).
        path: the PNG to write.
        title: the plot's title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    iterations = np.array([float(r["iteration"]) for r in rows])
    mean, low, high = (np.array([float(r[k]) for r in rows]) for k in ("return_mean", "return_min", "return_max"))
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    ax.fill_between(iterations, low, high, alpha=0.25, label="min-max over episodes")
    ax.plot(iterations, mean, marker="o", label="mean return")
    if len(rows) and float(rows[0]["iteration"]) == 0:
        ax.annotate(str(rows[0].get("policy", "")), (iterations[0], mean[0]), textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("iteration (0: initial episodes)")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("episode return")
    ax.set_title(title or "learning curve")
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = atomic_write(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)
    return path


def log_to_wandb(
    out_dir: str | Path,
    records: Sequence[EpisodeRecord],
    config: dict[str, Any],
    plan_stats: dict[str, dict[str, float]] | None = None,
    *,
    init: dict[str, Any] | None = None,
    captions: dict[str, str] | None = None,
) -> Path:
    """Log an evaluation as a W&B run in ``out_dir``.

    Logged: mean/std return per method, the per-episode table, each method's planner statistics (``plan_stats``:
    method -> ``plan/*`` figures), the prediction-error plot and the videos (``video_*.gif`` in ``out_dir``, each
    with its caption from ``captions``: file name -> text).

    Args:
        out_dir: the evaluation's output directory (the W&B files go to ``out_dir/wandb``).
        records: the episodes.
        config: the evaluation's settings (the run's W&B config).
        plan_stats: method -> planner statistics.
        init: further ``wandb.init`` arguments (``project``, ``entity``, ``mode``, ``tags``, ``group``, ``name``)
            over the defaults: project ``mbmeta``, name ``evaluate-<out_dir name>``, group ``<out_dir name>``.
        captions: video file name -> caption.

    Offline unless ``WANDB_MODE=online``; returns the run directory (``wandb sync`` it to upload).
    """
    import wandb

    out = Path(out_dir)
    name = out.resolve().name
    options = {"project": "mbmeta", "name": f"evaluate-{name}", "group": name, **(init or {})}
    run = wandb.init(dir=str(out), job_type="evaluate", config=config, **options)
    try:
        payload = results_payload(records)
        for method, stats in (plan_stats or {}).items():
            payload.update({f"evaluate/{method}/{name}": value for name, value in stats.items()})
        plot = out / "prediction_error.png"
        if plot.is_file():
            payload["evaluate/prediction_error"] = wandb.Image(str(plot))
        for video in sorted(out.glob("video_*.gif")):
            caption = (captions or {}).get(video.name)
            payload[f"evaluate/{video.stem}"] = wandb.Video(str(video), format="gif", caption=caption)
        run.log(payload)
    finally:
        run.finish()
    return Path(run.dir).parent


def results_payload(records: Sequence[EpisodeRecord], prefix: str = "evaluate") -> dict[str, Any]:
    """What W&B gets of an evaluation's episodes: the per-episode table and each method's mean/std return and success.

    Keys: ``<prefix>/episodes`` (a ``wandb.Table`` with the columns of ``results.csv``), ``<prefix>/<method>/
    return_mean``, ``.../return_std`` and, where the family defines success, ``.../success_rate`` and, for each of
    its measures, ``.../<measure>_mean``.
    """
    import wandb

    names = sorted({k for r in records for k in r.task})
    measures = measure_names(records)
    columns = ["method", "task_id", *task_columns(names), "seed", "return", "length", "terminated", "success"]
    table = wandb.Table(columns=[*columns, *(MEASURE_PREFIX + m for m in measures)])
    for r in records:
        table.add_data(r.method, r.task_id, *(r.task.get(n) for n in names), r.seed, r.episode_return, r.length,
                       r.terminated, r.success, *(r.measures.get(m) for m in measures))  # fmt: skip
    payload: dict[str, Any] = {f"{prefix}/episodes": table}
    for method, by_task in summarise(records).items():
        payload[f"{prefix}/{method}/return_mean"], payload[f"{prefix}/{method}/return_std"] = by_task["overall"][:2]
    for method, by_task in success_rates(records).items():
        payload[f"{prefix}/{method}/success_rate"] = by_task["overall"]
    for method, means in measure_means(records).items():
        for name, mean in means.items():
            payload[f"{prefix}/{method}/{name}_mean"] = mean
    return payload


def log_table_to_wandb(
    out_dir: str | Path,
    *,
    job_type: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    config: dict[str, Any],
    metrics: dict[str, float] | None = None,
    init: dict[str, Any] | None = None,
) -> Path:
    """Log one table (``<job_type>/table``) and summary figures as a W&B run in ``out_dir`` (e.g. a transfer study).

    Args:
        out_dir: the command's output directory (the W&B files go to ``out_dir/wandb``).
        job_type: the W&B job type and the prefix of the logged keys.
        columns: the table's columns.
        rows: its rows.
        config: the command's settings (the run's W&B config).
        metrics: figures logged beside the table.
        init: further ``wandb.init`` arguments over the defaults: project ``mbmeta``, name
            ``<job_type>-<out_dir name>``, group ``<out_dir name>``.

    Returns:
        The W&B run directory (``wandb sync`` it to upload an offline run).
    """
    import wandb

    out = Path(out_dir)
    name = out.resolve().name
    options = {"project": "mbmeta", "name": f"{job_type}-{name}", "group": name, **(init or {})}
    run = wandb.init(dir=str(out), job_type=job_type, config=config, **options)
    try:
        table = wandb.Table(columns=list(columns), data=[list(row) for row in rows])
        run.log({f"{job_type}/table": table, **{f"{job_type}/{k}": v for k, v in (metrics or {}).items()}})
    finally:
        run.finish()
    return Path(run.dir).parent


def log_checkpoint_artifact(run: Any, path: str | Path, *, name: str) -> bool:
    """Log a checkpoint as a W&B ``model`` artifact if the run is online; returns whether it was logged.

    Offline runs skip it: an offline artifact is a full copy of the checkpoint inside the run's folder, and the
    checkpoint is on disk beside it anyway.

    Args:
        run: a ``wandb`` run (e.g. ``WandbLogger.experiment``).
        path: the checkpoint file.
        name: the artifact's name (characters W&B does not allow become ``-``).
    """
    import re

    import wandb

    if getattr(run, "offline", True) or getattr(run, "disabled", False):
        return False
    artifact = wandb.Artifact(re.sub(r"[^\w.-]", "-", name), type="model")
    artifact.add_file(str(path))
    run.log_artifact(artifact)
    return True
