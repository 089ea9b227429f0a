"""How long an experiment's remaining steps will take, estimated from its finished ones (``mbmeta sweep --status``).

Every step a sweep finishes stamps its wall time (``seconds`` in its ``sweep.json``); a training's time is read from
its iterations' recorded times instead where it has them (:mod:`mbmeta.runs.iteration_times`: these survive a
resume, the stamp only knows the last part). The time left is estimated from the medians of those times, per kind of
step (training, final evaluation, kept-checkpoint evaluation) and method, falling back to every method's median of
that kind while a method has finished none:

- a training not finished: its own recorded iterations' mean × the iterations left where it has recorded any, else
  the median training time × the fraction of its iterations not yet completed (while no training of its method has
  finished, the median of its method's unfinished trainings projected whole at their own pace, when any has one);
- an evaluation not done (to do, running or stale): the median of its kind;
- the kept-checkpoint evaluations of a run still training, whose checkpoints are not all kept yet: as many as the
  finished trainings of the method evaluated (median), less those already done.

Evaluations the sweep copies instead of running (a last kept checkpoint that is the final model) cost nothing and are
left out of the medians. The sum is time on one core; ``mbmeta sweep --jobs N`` runs N jobs at once. It is only an
estimate: an evaluation resumed after a stop stamps the wall time of its last part only, a step paused with
SIGSTOP counts its pause as well, the pace of a training changes with the machine's load, and the median keeps a few
such steps from moving it.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

TRAIN, FINAL, CURVE = "training", "final evaluation", "curve evaluation"


@dataclass(frozen=True)
class Step:
    """One step of a job, as the estimate needs it.

    Attributes:
        kind: :data:`TRAIN`, :data:`FINAL` or :data:`CURVE`.
        method: the method it trains or evaluates.
        done: finished with the current settings.
        seconds: its stamped wall time when done and run (None otherwise).
        left: the fraction of it still to run (a training's iterations not completed); 0 when done or copied.
        left_seconds: a training's own estimate of its time left (its recorded iterations' mean pace), used
            instead of ``left`` × the median when given.
        projected: an unfinished training's whole time at its own pace (its recorded iterations, the others at
            their mean): a method's training median while none of its trainings has finished.
        copied: an evaluation the sweep copies (or copied) from the final one instead of running it.
    """

    kind: str
    method: str
    done: bool
    seconds: float | None = None
    left: float = 1.0
    copied: bool = False
    left_seconds: float | None = None
    projected: float | None = None


@dataclass(frozen=True)
class Remaining:
    """The estimate: seconds of one core, and the steps it covers.

    Attributes:
        seconds: estimated wall time of the steps left, on one core.
        trainings: trainings not finished.
        evaluations: evaluations still to run (declared, and expected of runs still training).
        unknown: steps left of a kind no finished step measures yet (not in ``seconds``).
    """

    seconds: float
    trainings: int
    evaluations: int
    unknown: int


def estimate_remaining(jobs: Sequence[Sequence[Step]]) -> Remaining:
    """The time left of the jobs' steps (see the module docstring); ``jobs``: each job's steps."""
    measured = _medians(step for job in jobs for step in job)
    curve_counts = _curve_counts(jobs)
    seconds, trainings, evaluations, unknown = 0.0, 0, 0, 0
    for job in jobs:
        training = next((s for s in job if s.kind == TRAIN), None)
        left = [s for s in job if not s.done and s.left > 0]
        if training is not None and not training.done and None in curve_counts:  # not all checkpoints kept yet
            for method in dict.fromkeys(s.method for s in job if s.kind == FINAL):
                expected = curve_counts.get(method, curve_counts[None])
                done = sum(1 for s in job if s.kind == CURVE and s.method == method and s.done)
                declared = sum(1 for s in left if s.kind == CURVE and s.method == method)
                left += [Step(CURVE, method, False)] * max(expected - done - declared, 0)
        for step in left:
            median = measured.get((step.kind, step.method), measured.get((step.kind, None)))
            trainings += step.kind == TRAIN
            evaluations += step.kind != TRAIN
            if step.left_seconds is not None:
                seconds += step.left_seconds
            elif median is None:
                unknown += 1
            else:
                seconds += median * step.left
    return Remaining(seconds, trainings, evaluations, unknown)


def remaining_line(remaining: Remaining, duration: Callable[[float], str]) -> str | None:
    """One line for the status: the estimate, or None when nothing is left; ``duration`` formats seconds."""
    if remaining.trainings == remaining.evaluations == 0:
        return None
    counted = f"{remaining.trainings} training(s) and {remaining.evaluations} evaluation(s)"
    if remaining.unknown == remaining.trainings + remaining.evaluations:
        return f"left: {counted}; no finished step of their kinds to estimate their time from yet"
    unknown = f", {remaining.unknown} of them with no finished step of their kind to estimate from" * bool(
        remaining.unknown
    )
    return (
        f"left: {counted}{unknown}: about {duration(remaining.seconds)} of one core "
        "(from the listed runs' finished steps and recorded iterations)"
    )


# ----- helpers ---------------------------------------------------------------------------------------------------


def _medians(steps: Iterable[Step]) -> dict[tuple[str, str | None], float]:
    """Median seconds per (kind, method) and per (kind, None) over every method, of the steps that ran.

    A method none of whose trainings has finished takes its unfinished trainings' projections (per method only).
    """
    times: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    projections: dict[tuple[str, str], list[float]] = defaultdict(list)
    for step in steps:
        if step.done and not step.copied and step.seconds is not None and step.seconds > 0:
            times[step.kind, step.method].append(step.seconds)
            times[step.kind, None].append(step.seconds)
        elif not step.done and step.projected is not None and step.projected > 0:
            projections[step.kind, step.method].append(step.projected)
    for key, values in projections.items():
        times.setdefault(key, values)
    return {key: statistics.median(values) for key, values in times.items()}


def _curve_counts(jobs: Sequence[Sequence[Step]]) -> dict[str | None, int]:
    """Per method, and every method's under None: the median count of kept-checkpoint evaluations run per job.

    Only jobs whose training finished count (their checkpoints are all kept); copied evaluations are not counted.
    Empty when no such job has any.
    """
    counts: dict[str | None, list[int]] = defaultdict(list)
    for job in jobs:
        if not any(s.kind == TRAIN and s.done for s in job):
            continue
        for method in {s.method for s in job if s.kind == CURVE}:
            count = sum(1 for s in job if s.kind == CURVE and s.method == method and not s.copied)
            counts[method].append(count)
            counts[None].append(count)
    return {method: round(statistics.median(values)) for method, values in counts.items()}
