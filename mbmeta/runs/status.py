"""Where an experiment stands, read from its files alone (``mbmeta sweep DIR --status``).

For each job of a sweep: its training (done, running, stopped part-way, failed, not started, or started with other
configs), how far it got (iterations completed of the configured number) and when its files were last written; how
many of its final evaluations and kept-checkpoint evaluations (the learning curve) are done, and how many are
running now. A step counts as running only while a live process holds its lock (a paused process still does); a
step whose stamp says running but whose lock is free was interrupted and is redone by the next sweep.

Nothing is written: the probe takes each lock for an instant and releases it (:meth:`RunLock.in_use`). A last line
estimates the time the steps left will take, from the wall times of the finished ones (:mod:`mbmeta.runs.estimate`).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from mbmeta.runs.durations import coarse_duration
from mbmeta.runs.estimate import CURVE, FINAL, TRAIN, Step, estimate_remaining, remaining_line
from mbmeta.runs.experiment import EvaluationRun, Experiment, TrainingRun
from mbmeta.runs.iteration_times import mean_iteration_seconds, read_iteration_times, training_seconds
from mbmeta.runs.run_dir import LOCK_FILE, STATE_FILE, LoopState, RunLock
from mbmeta.runs.sweep import (
    STAMP_FILE,
    TRAIN_LOG,
    Job,
    curve_evaluations,
    curve_state,
    evaluates_final_model,
    evaluation_lock_dir,
    evaluation_lock_name,
    evaluation_state,
    finished_checkpoint,
    read_stamp,
    training_is_stale,
)

RUN_CONFIG = "config.json"  # the composed config ``mbmeta train`` writes into its run directory


@dataclass(frozen=True)
class TrainingStatus:
    """A training run's state.

    Attributes:
        state: ``done``, ``running`` (a live process holds the run's lock), ``stopped`` (started, not finished, no
            process holds it), ``failed``, ``stale`` (started with other configs) or ``not started``.
        iteration: iterations completed (None before the run wrote its state).
        iterations: the configured number of iterations (None when the run has not written its config).
        seconds: a finished training's wall time: from its iterations' recorded times
            (:func:`~mbmeta.runs.iteration_times.training_seconds`), else the sweep's stamp (None otherwise).
        pace: an unfinished training's mean wall time per iteration, over its recorded ones (None: none recorded).
        projected: an unfinished training's whole time at that pace
            (:func:`~mbmeta.runs.iteration_times.training_seconds`), or None.
        updated: when the run directory's state or log was last written (seconds since the epoch), or None.
    """

    state: str
    iteration: int | None = None
    iterations: int | None = None
    seconds: float | None = None
    pace: float | None = None
    projected: float | None = None
    updated: float | None = None


@dataclass(frozen=True)
class Counts:
    """Evaluations of one kind: how many are declared, done, running now, and stale.

    Stale: other results (another checkpoint or other settings) sit in the output directory; the sweep stops there
    unless ``--replace``.
    """

    done: int = 0
    declared: int = 0
    running: int = 0
    stale: int = 0


@dataclass(frozen=True)
class JobStatus:
    """A job's state: its training (None for a reference policy) and counts of its evaluations.

    Attributes:
        evaluations: the final evaluations.
        curve: the evaluations of the checkpoints the run has kept so far.
        steps: the job's training and evaluations as the time estimate reads them.
    """

    name: str
    training: TrainingStatus | None
    evaluations: Counts
    curve: Counts
    steps: tuple[Step, ...] = ()


def training_status(experiment: Experiment, run: TrainingRun, sha: str | None = None) -> TrainingStatus:
    """Read a training run's state from its directory (see :class:`TrainingStatus`).

    ``sha``: :func:`~mbmeta.runs.sweep.finished_checkpoint` of the run when the caller has it (else computed here).

    Raises:
        ValueError: a corrupt stamp or state file (names it).
    """
    directory = experiment.root / run.run_dir
    state_path = directory / STATE_FILE
    iteration = LoopState.load(state_path).iteration if state_path.is_file() else None
    iterations = configured_iterations(directory)
    common = {"iteration": iteration, "iterations": iterations, "updated": _updated(directory)}
    stamp = read_stamp(directory)
    times = _iteration_times(directory)
    if (sha or finished_checkpoint(experiment, run)) is not None:
        measured = None if iterations is None else training_seconds(times, iterations)
        return TrainingStatus("done", seconds=stamp.get("seconds") if measured is None else measured, **common)
    if training_is_stale(experiment, run):
        return TrainingStatus("stale", **common)
    if iterations is not None:
        committed = {i: t for i, t in times.items() if i <= (iteration or 0)}  # later rows: a rolled-back run's
        common["pace"] = mean_iteration_seconds(committed, iteration or 0)
        common["projected"] = training_seconds(committed, iterations)
    if RunLock.in_use(directory, LOCK_FILE):
        return TrainingStatus("running", **common)
    if stamp is not None and stamp.get("status") == "failed":
        return TrainingStatus("failed", **common)
    started = stamp is not None or iteration is not None
    return TrainingStatus("stopped" if started else "not started", **common)


def job_status(experiment: Experiment, job: Job) -> JobStatus:
    """The state of a job's training and the counts of its evaluations."""
    sha = None if job.training is None else finished_checkpoint(experiment, job.training)  # hashed once
    training = None if job.training is None else training_status(experiment, job.training, sha)
    finals = [_progress(experiment, evaluation_state(experiment, e, sha), e, e.out_dir) for e in job.evaluations]
    kept = curve_evaluations(experiment, job)
    curves = [_progress(experiment, curve_state(experiment, c), c.evaluation, c.out_dir) for c in kept]
    steps = [] if training is None else [_training_step(job.training.method, training)]
    final_progress = zip(job.evaluations, finals, strict=True)
    steps += [_evaluation_step(experiment, FINAL, e.method, e.out_dir, p) for e, p in final_progress]
    for c, p in zip(kept, curves, strict=True):
        copied = evaluates_final_model(experiment, c, sha)
        steps.append(_evaluation_step(experiment, CURVE, c.evaluation.method, c.out_dir, p, copied))
    return JobStatus(job.name, training, _counts(finals), _counts(curves), tuple(steps))


def experiment_status(experiment: Experiment, jobs: Sequence[Job]) -> list[JobStatus]:
    """:func:`job_status` of every job, in order."""
    return [job_status(experiment, job) for job in jobs]


def status_table(experiment: Experiment, statuses: Sequence[JobStatus], now: float | None = None) -> str:
    """A plain-text table of the jobs' states and one totals line; ``now`` (seconds since the epoch) for ages."""
    now = time.time() if now is None else now
    rows = [("run", "training", "final evaluations", "curve points")]
    for s in statuses:
        rows.append((s.name, _describe_training(s.training, now), _describe_counts(s.evaluations), _curve_cell(s)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    left = remaining_line(estimate_remaining([s.steps for s in statuses]), coarse_duration)
    return "\n".join([f"{experiment.root}: {len(statuses)} job(s)", *lines, _totals(statuses), *[left] * bool(left)])


# ----- helpers ---------------------------------------------------------------------------------------------------


def _progress(experiment: Experiment, state: str, evaluation: EvaluationRun, out_dir: str) -> str:
    """``done``, ``stale``, ``running`` (its lock is held) or ``todo`` for one evaluation output.

    ``out_dir``: a final evaluation's output, or a kept checkpoint's of the same method and seeds; ``evaluation``: the
    final evaluation (its lock lives in that run's directory); ``state``: the output's state as the sweep reads it.
    """
    if state in ("done", "stale"):
        return state
    lock_dir = experiment.root / evaluation_lock_dir(evaluation)
    return "running" if RunLock.in_use(lock_dir, evaluation_lock_name(out_dir)) else "todo"


def _training_step(method: str, training: TrainingStatus) -> Step:
    """A training as the estimate reads it: its time when done, else the fraction of iterations left.

    An unfinished training that recorded iterations also gives the time of those left at its own pace.
    """
    if training.state == "done":
        return Step(TRAIN, method, True, training.seconds, left=0.0)
    completed = (training.iteration or 0) if training.state in ("running", "stopped", "failed") else 0
    left = 1.0 if not training.iterations else max(1.0 - completed / training.iterations, 0.0)
    own = None
    if training.pace is not None and training.iterations:
        own = training.pace * max(training.iterations - completed, 0)
    return Step(TRAIN, method, False, left=left, left_seconds=own, projected=training.projected)


def _evaluation_step(
    experiment: Experiment, kind: str, method: str, out_dir: str, progress: str, copied: bool = False
) -> Step:
    """An evaluation as the estimate reads it: done with its stamped time (copied ones: none), or left to run."""
    if progress != "done":
        return Step(kind, method, False, left=0.0 if copied else 1.0, copied=copied)
    stamp = read_stamp(experiment.root / out_dir) or {}
    seconds = stamp.get("seconds")
    copied = "reused_from" in stamp
    return Step(kind, method, True, None if copied else seconds, left=0.0, copied=copied)


def _counts(progress: list[str]) -> Counts:
    counted = Counter(progress)
    return Counts(counted["done"], len(progress), counted["running"], counted["stale"])


def configured_iterations(directory: Path) -> int | None:
    """``loop.iterations`` from the config ``mbmeta train`` wrote into the run directory, or None."""
    try:
        iterations = json.loads((directory / RUN_CONFIG).read_text())["loop"]["iterations"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return iterations if isinstance(iterations, int) else None


def _iteration_times(directory: Path) -> dict[int, float]:
    """The run's recorded iteration times; {} when there are none or the file is damaged.

    The file is provenance only: without it the estimate falls back to the stamp and the fraction of iterations left.
    """
    try:
        return read_iteration_times(directory)
    except ValueError:
        return {}


def _updated(directory: Path) -> float | None:
    """The latest modification time of the run's state, stamp and log, or None when none exists."""
    times = [p.stat().st_mtime for p in (directory / n for n in (STATE_FILE, STAMP_FILE, TRAIN_LOG)) if p.is_file()]
    return max(times) if times else None


def _describe_training(training: TrainingStatus | None, now: float) -> str:
    if training is None:
        return "reference policy"
    if training.state == "done":
        return "done" if training.seconds is None else f"done in {coarse_duration(training.seconds)}"
    if training.state in ("not started", "stale"):
        return "not started" if training.state == "not started" else "started with other configs (--replace)"
    total = "?" if training.iterations is None else str(training.iterations)
    progress = f"{training.iteration or 0} of {total} iterations"
    if training.pace is not None:
        progress += f" (about {coarse_duration(training.pace)} each)"
    age = "" if training.updated is None else f", written {coarse_duration(max(now - training.updated, 0.0))} ago"
    return f"{training.state}: {progress}{age}"


def _describe_counts(counts: Counts, kept: bool = False) -> str:
    if counts.declared == 0:
        return "-"
    extra = [f"{counts.running} running"] * bool(counts.running) + [f"{counts.stale} stale"] * bool(counts.stale)
    return ", ".join([f"{counts.done} of {counts.declared}{' kept' if kept else ''} done", *extra])


def _curve_cell(status: JobStatus) -> str:
    return "-" if status.training is None else _describe_counts(status.curve, kept=True)


def _totals(statuses: Sequence[JobStatus]) -> str:
    trainings = Counter(s.training.state for s in statuses if s.training is not None)
    order = ("done", "running", "stopped", "failed", "stale", "not started")
    parts = [f"{trainings[state]} {state}" for state in order if trainings[state]]
    names = [f.name for f in fields(Counts)]
    total = Counts(**{n: sum(getattr(s.evaluations, n) + getattr(s.curve, n) for s in statuses) for n in names})
    evaluations = "evaluations " + _describe_counts(total) if total.declared else "no evaluations"
    stale = "; stale results stop the sweep: --replace moves them aside" if total.stale else ""
    return f"trainings: {', '.join(parts) or 'none'}; {evaluations}{stale}"
