"""Merged result tables over training seeds: per method and test condition, and paired differences between methods.

The input is every evaluation episode of an experiment, grouped ``method -> training seed -> episodes`` (episodes
as :class:`~mbmeta.evaluation.episodes.EpisodeRecord` fields in a mapping, as ``results.json`` stores them). Each
training seed is first reduced to one number per condition (the mean of its episodes there, over every evaluation
seed, task and episode), then :func:`~mbmeta.evaluation.statistics.estimate` summarises those numbers across seeds.
A paired difference ``a − b`` is taken per seed that both methods have, so that what a seed shares (its data,
its tasks) cancels.

Conditions: ``overall`` (every episode), named conditions (a task belongs when each named parameter takes one of
the listed values, e.g. CaDM's ``moderate`` HalfCheetah masses), and each task on its own (its label, as
``mbmeta evaluate`` prints it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mbmeta.evaluation.reports import MEASURE_PREFIX, task_label
from mbmeta.evaluation.statistics import CONFIDENCE, Estimate, estimate, verdict

Episode = Mapping[str, Any]  # one results.json episode: method, task_id, task, seed, episode_return, length, ...
EpisodesBySeed = Mapping[int, Sequence[Episode]]

# metric -> (what it is, digits shown)
METRICS: dict[str, tuple[str, int]] = {
    "episode_return": ("episode return", 1),
    "length": ("episode length (steps)", 1),
    "success": ("success rate", 2),
}
OVERALL = "overall"


def is_metric(metric: str) -> bool:
    """Whether ``metric`` names a reportable metric: one of :data:`METRICS` or ``measure.<name>``.

    ``measure.<name>`` is one of the family's per-episode measures (``TaskFamily.measures``), reported as its mean
    per episode with 2 digits.
    """
    return metric in METRICS or (metric.startswith(MEASURE_PREFIX) and len(metric) > len(MEASURE_PREFIX))


def metric_info(metric: str) -> tuple[str, int]:
    """``(what it is, digits shown)`` of a metric (:data:`METRICS`, or a family measure)."""
    if metric in METRICS:
        return METRICS[metric]
    if is_metric(metric):
        return f"{metric.removeprefix(MEASURE_PREFIX)} per episode", 2
    raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(METRICS)} or measure.<name>")


@dataclass(frozen=True)
class Condition:
    """A test condition: a name and which tasks (parameter dicts) belong to it."""

    name: str
    contains: Callable[[Mapping[str, float]], bool]


def named_condition(name: str, values: Mapping[str, Sequence[float]]) -> Condition:
    """A condition holding the tasks whose every listed parameter takes one of its listed values."""

    def contains(task: Mapping[str, float]) -> bool:
        return all(
            parameter in task and any(math.isclose(task[parameter], v, rel_tol=1e-9, abs_tol=1e-12) for v in allowed)
            for parameter, allowed in values.items()
        )

    return Condition(name, contains)


def task_conditions(episodes: Mapping[str, EpisodesBySeed]) -> list[Condition]:
    """One condition per task seen in ``episodes``, in task order (``task_id``, then first appearance)."""
    tasks: dict[str, tuple[int, dict]] = {}
    for by_seed in episodes.values():
        for seed_episodes in by_seed.values():
            for e in seed_episodes:
                tasks.setdefault(task_label(e["task"]), (int(e.get("task_id", 0)), dict(e["task"])))
    ordered = sorted(tasks.items(), key=lambda item: item[1][0])
    return [Condition(label, (lambda task, _label=label: task_label(task) == _label)) for label, _ in ordered]


def conditions_for(
    episodes: Mapping[str, EpisodesBySeed], named: Mapping[str, Mapping[str, Sequence[float]]] | None = None
) -> list[Condition]:
    """``overall``, then the named conditions, then every task."""
    overall = Condition(OVERALL, lambda task: True)
    return [overall, *(named_condition(n, v) for n, v in (named or {}).items()), *task_conditions(episodes)]


def episode_value(episode: Episode, metric: str) -> float | None:
    """The metric of one episode; None where it is undefined (success in a family without it, a measure missing).

    An episode evaluated before measures were recorded has none of them.
    """
    metric_info(metric)  # refuses an unknown metric
    if metric.startswith(MEASURE_PREFIX):
        value = episode.get("measures", {}).get(metric.removeprefix(MEASURE_PREFIX))
    else:
        value = episode.get(metric)
    return None if value is None else float(value)


def seed_values(by_seed: EpisodesBySeed, metric: str, condition: Condition) -> dict[int, float]:
    """``seed -> mean of the metric over that seed's episodes in the condition`` (seeds without any are left out)."""
    values = {}
    for seed, seed_episodes in by_seed.items():
        chosen = [episode_value(e, metric) for e in seed_episodes if condition.contains(e["task"])]
        chosen = [v for v in chosen if v is not None]
        if chosen:
            values[seed] = math.fsum(chosen) / len(chosen)
    return dict(sorted(values.items()))


@dataclass(frozen=True)
class MethodSummary:
    """One method in one condition: the per-seed values and their estimate across seeds."""

    method: str
    condition: str
    per_seed: dict[int, float]
    estimate: Estimate


@dataclass(frozen=True)
class Difference:
    """A paired difference ``first − second`` in one condition, over the seeds both methods have."""

    first: str
    second: str
    condition: str
    per_seed: dict[int, float]
    estimate: Estimate

    @property
    def verdict(self) -> str:
        """``above`` / ``below`` / ``not established`` (see :func:`~mbmeta.evaluation.statistics.verdict`)."""
        return verdict(self.estimate)

    @property
    def name(self) -> str:
        """``first − second``."""
        return f"{self.first} − {self.second}"


SeedValues = Mapping[str, Mapping[str, Mapping[int, float]]]  # method -> condition -> training seed -> value


def summarise_values(
    values: SeedValues, conditions: Sequence[str], confidence: float = CONFIDENCE
) -> list[MethodSummary]:
    """Every method (in the order of ``values``) in every condition: its per-seed values and their estimate."""
    rows = []
    for condition in conditions:
        for method, by_condition in values.items():
            per_seed = dict(sorted(by_condition.get(condition, {}).items()))
            rows.append(MethodSummary(method, condition, per_seed, estimate(list(per_seed.values()), confidence)))
    return rows


def difference_values(
    values: SeedValues,
    comparisons: Sequence[tuple[str, str]],
    conditions: Sequence[str],
    confidence: float = CONFIDENCE,
) -> list[Difference]:
    """Each comparison ``(a, b)`` in every condition: ``a − b`` per shared seed, summarised across those seeds.

    Raises:
        ValueError: a comparison names a method without values.
    """
    rows = []
    for first, second in comparisons:
        for name in (first, second):
            if name not in values:
                raise ValueError(f"comparison {first} − {second}: no results for method {name!r}")
        for condition in conditions:
            a, b = values[first].get(condition, {}), values[second].get(condition, {})
            diffs = {seed: a[seed] - b[seed] for seed in sorted(a) if seed in b}
            rows.append(Difference(first, second, condition, diffs, estimate(list(diffs.values()), confidence)))
    return rows


def episode_seed_values(
    episodes: Mapping[str, EpisodesBySeed], metric: str, conditions: Sequence[Condition]
) -> dict[str, dict[str, dict[int, float]]]:
    """``method -> condition -> seed -> value``: each seed's mean of the metric over its episodes in the condition."""
    return {
        method: {c.name: seed_values(by_seed, metric, c) for c in conditions} for method, by_seed in episodes.items()
    }


def summarise_methods(
    episodes: Mapping[str, EpisodesBySeed],
    metric: str,
    conditions: Sequence[Condition],
    confidence: float = CONFIDENCE,
) -> list[MethodSummary]:
    """Every method in every condition (methods in the order of ``episodes``)."""
    values = episode_seed_values(episodes, metric, conditions)
    return summarise_values(values, [c.name for c in conditions], confidence)


def paired_differences(
    episodes: Mapping[str, EpisodesBySeed],
    comparisons: Sequence[tuple[str, str]],
    metric: str,
    conditions: Sequence[Condition],
    confidence: float = CONFIDENCE,
) -> list[Difference]:
    """Each comparison ``(a, b)`` in every condition: ``a − b`` per shared seed, summarised across those seeds.

    Raises:
        ValueError: a comparison names a method without episodes.
    """
    values = episode_seed_values(episodes, metric, conditions)
    return difference_values(values, comparisons, [c.name for c in conditions], confidence)


def format_number(value: float, digits: int = 1, signed: bool = False) -> str:
    """A number for a table: fixed digits, a true minus sign, ``—`` for NaN."""
    if not math.isfinite(value):
        return "—"
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return text.replace("-", "−")


def format_interval(est: Estimate, digits: int = 1, signed: bool = False) -> str:
    """``[low, high]``, or ``—`` without an interval."""
    if not est.has_interval:
        return "—"
    return f"[{format_number(est.low, digits, signed)}, {format_number(est.high, digits, signed)}]"


def _interval_header(rows: Sequence[MethodSummary | Difference]) -> str:
    confidence = rows[0].estimate.confidence if rows else CONFIDENCE
    return f"{100 * confidence:g} % interval"


def method_table(rows: Sequence[MethodSummary], digits: int = 1, notes: Mapping[str, str] | None = None) -> str:
    """Markdown: one line per method (rows of one condition): n, mean, s.e., interval, the per-seed values.

    ``notes`` (method -> text), when given, fills a last column (e.g. how many of its runs are done or failed).
    """
    header = f"| method | n seeds | mean | s.e. | {_interval_header(rows)} | per seed |" + (" runs |" if notes else "")
    lines = [header, "|---|---:|---:|---:|---|---|" + ("---|" if notes else "")]
    for row in rows:
        est = row.estimate
        seeds = ", ".join(f"{s}: {format_number(v, digits)}" for s, v in row.per_seed.items()) or "—"
        line = (
            f"| `{row.method}` | {est.n} | {format_number(est.mean, digits)} | {format_number(est.se, digits)} "
            f"| {format_interval(est, digits)} | {seeds} |"
        )
        lines.append(line + (f" {notes.get(row.method, '—')} |" if notes else ""))
    return "\n".join(lines)


def difference_table(rows: Sequence[Difference], digits: int = 1) -> str:
    """Markdown: one line per paired difference (rows of one condition) with its interval and verdict."""
    header = f"| difference | n seeds | mean | s.e. | {_interval_header(rows)} | verdict |"
    lines = [header, "|---|---:|---:|---:|---|---|"]
    for row in rows:
        est = row.estimate
        lines.append(
            f"| `{row.first}` − `{row.second}` | {est.n} | {format_number(est.mean, digits, signed=True)} "
            f"| {format_number(est.se, digits)} | {format_interval(est, digits, signed=True)} | {row.verdict} |"
        )
    return "\n".join(lines)


def condition_table(rows: Sequence[MethodSummary], methods: Sequence[str], digits: int = 1) -> str:
    """Markdown: conditions as rows, methods as columns, each cell ``mean [interval] (n)``."""
    by_key = {(r.condition, r.method): r for r in rows}
    conditions = list(dict.fromkeys(r.condition for r in rows))
    lines = ["| condition | " + " | ".join(f"`{m}`" for m in methods) + " |", "|---|" + "---:|" * len(methods)]
    for condition in conditions:
        cells = []
        for method in methods:
            row = by_key.get((condition, method))
            if row is None or row.estimate.n == 0:
                cells.append("—")
                continue
            interval = format_interval(row.estimate, digits)
            suffix = f" {interval}" if interval != "—" else ""
            cells.append(f"{format_number(row.estimate.mean, digits)}{suffix} (n = {row.estimate.n})")
        lines.append(f"| {condition} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
