"""The learning curve of an experiment: every kept checkpoint's evaluation against the transitions it was fitted on.

With ``loop.keep_checkpoints_every: k`` a run keeps the checkpoint of every k-th iteration, and its ``state.json``
records each with its SHA-256 and the transitions it was fitted on; with ``evaluate.every_kept_checkpoint`` the
runner evaluates each (``results/<method>-seed<s>/curve/iteration_NNN/eval<e>/``). This module merges those
evaluations the way :mod:`mbmeta.runs.merge` merges the final ones (each training seed reduced first, then the mean,
standard error, Student-t interval and n across seeds, per method and kept iteration) and writes
``results/curve.md``, ``results/curve.json`` and ``results/curve.png`` (mean ± interval per method against
transitions). Every kept checkpoint's evaluation is listed with its status, so a missing point shows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mbmeta.data.atomic import atomic_write
from mbmeta.evaluation.statistics import CONFIDENCE, estimate
from mbmeta.evaluation.tables import (
    METRICS,
    OVERALL,
    conditions_for,
    episode_seed_values,
    format_interval,
    format_number,
    summarise_values,
)
from mbmeta.runs.experiment import RESULTS_DIR, CurveEvaluation, Experiment
from mbmeta.runs.merge import (
    PROTOCOL_HEADLINE,
    Rows,
    estimate_dict,
    estimate_of,
    load_output,
    output_status,
    protocol_values,
)
from mbmeta.runs.sweep import curve_settings, kept_checkpoints, read_stamp

CURVE_TABLE = "curve.md"
CURVE_DATA = "curve.json"
CURVE_PLOT = "curve.png"
PROTOCOL_CURVES = (PROTOCOL_HEADLINE, "extreme", "test", "train")  # the protocol's numbers a curve is drawn for


def curve_runs(experiment: Experiment) -> list[tuple[CurveEvaluation, str, str]]:
    """Every kept checkpoint's evaluation the design asks for, with its ``(status, detail)``.

    A result stamped for another checkpoint than the one ``state.json`` records is ``stale``.
    """
    runs = []
    for evaluation in experiment.evaluation_runs():
        if evaluation.training is None:  # a reference policy: no checkpoints, no curve
            continue
        kept = kept_checkpoints(experiment, evaluation.training)
        for curve in experiment.curve_evaluations(evaluation, kept):
            status, detail = output_status(experiment, curve.out_dir, curve_settings(experiment, curve))
            stamp = read_stamp(experiment.root / curve.out_dir)
            if status == "done" and (stamp or {}).get("checkpoint_sha256") != curve.kept.sha256:
                status, detail = "stale", "evaluated another checkpoint than the one state.json records"
            runs.append((curve, status, detail))
    return runs


def merge_curve(experiment: Experiment, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Summarise every done kept-checkpoint evaluation; returns what :func:`write_curve` writes."""
    runs = curve_runs(experiment)
    rows: dict[tuple[str, int], Rows] = {}
    transitions: dict[tuple[str, int], dict[int, int]] = {}
    for curve, status, _ in runs:
        if status != "done":
            continue
        method, seed, iteration = curve.evaluation.method, curve.evaluation.seed, curve.kept.iteration
        point = rows.setdefault((method, iteration), {method: {}})[method]
        point.setdefault(seed, []).extend(load_output(experiment, curve.out_dir, method))
        transitions.setdefault((method, iteration), {})[seed] = curve.kept.transitions
    metric = experiment.metrics[0]
    shown = list(PROTOCOL_CURVES) if experiment.evaluation.protocol else [OVERALL, *experiment.conditions]
    order = list(experiment.methods)
    points = []
    for method, iteration in sorted(rows, key=lambda key: (order.index(key[0]), key[1])):
        values = _seed_values(experiment, rows[(method, iteration)], metric)
        per_seed = dict(sorted(transitions[(method, iteration)].items()))
        summaries = summarise_values(values, shown, confidence)
        points.append(
            {
                "method": method,
                "iteration": iteration,
                "transitions": math.fsum(per_seed.values()) / len(per_seed),
                "transitions_per_seed": {str(s): t for s, t in per_seed.items()},
                "values": {row.condition: estimate_dict(row.estimate, row.per_seed) for row in summaries},
            }
        )
    return {
        "experiment": experiment.name,
        "metric": metric,
        "confidence": confidence,
        "conditions": shown,
        "curve_episodes": experiment.evaluation.curve_episodes,
        "points": points,
        "to_target": steps_to_target(experiment, points, shown[0], confidence),
        "runs": [
            {
                "method": curve.evaluation.method,
                "seed": curve.evaluation.seed,
                "eval_seed": curve.evaluation.eval_seed,
                "iteration": curve.kept.iteration,
                "transitions": curve.kept.transitions,
                "status": status,
                "detail": detail,
                "path": curve.out_dir,
            }
            for curve, status, detail in runs
        ],
    }


def steps_to_target(
    experiment: Experiment, points: list[dict[str, Any]], condition: str, confidence: float
) -> dict[str, Any] | None:
    """Per method: each seed's transitions at its first point at or above ``experiment.curve_target`` (None: never).

    Over the seeds whose every kept checkpoint is evaluated; the mean, s.e. and interval are over the seeds only
    when every one of them reached the target (otherwise they are None and ``reached`` says how many did).
    """
    if experiment.curve_target is None:
        return None
    target = experiment.curve_target
    methods: dict[str, Any] = {}
    for method in experiment.methods:
        own = [p for p in points if p["method"] == method]
        seeds = sorted({int(s) for p in own for s in p["values"][condition]["per_seed"]})
        first: dict[int, float | None] = {}
        for seed in seeds:
            curve = [
                (p["transitions_per_seed"].get(str(seed)), p["values"][condition]["per_seed"].get(str(seed)))
                for p in own
            ]
            first[seed] = next((t for t, v in curve if t is not None and v is not None and v >= target), None)
        if not seeds:
            continue
        reached = [t for t in first.values() if t is not None]
        est = estimate_dict(estimate(reached, confidence), {}) if len(reached) == len(seeds) else None
        methods[method] = {
            "per_seed": {str(s): t for s, t in first.items()},
            "reached": len(reached),
            "n": len(seeds),
            "estimate": est,
        }
    return {"target": target, "condition": condition, "methods": methods}


def _seed_values(experiment: Experiment, rows: Rows, metric: str) -> dict[str, dict[str, dict[int, float]]]:
    """``method -> condition -> seed -> value`` of one curve point, reduced as the final table reduces them."""
    if experiment.evaluation.protocol is not None:
        return protocol_values(rows)[1]
    named = conditions_for({}, experiment.conditions)  # overall and the named conditions (no per-task rows)
    return episode_seed_values(rows, metric, named)


def render_curve(experiment: Experiment, curve: dict[str, Any]) -> str:
    """The Markdown of ``results/curve.md``."""
    digits = METRICS[curve["metric"]][1]
    e = experiment.evaluation
    episodes = "as many episodes as the final evaluation" if e.curve_episodes is None else f"{e.curve_episodes}"
    unit = "per condition" if e.protocol else "per task"
    lines = [
        f"# {experiment.name}: learning curve",
        "",
        "Each point is a checkpoint the loop kept (`loop.keep_checkpoints_every`), evaluated like the final model "
        f"but with {episodes} episode(s) {unit}; x is the transitions (environment steps) the model was fitted on, "
        "as the run's state.json records them. Each training seed counts once (reduced as in table.md); across seeds "
        f"the mean, its standard error, the two-sided {100 * curve['confidence']:g} % Student-t interval and n. The "
        "final model's number is in table.md.",
        "",
        f"Rebuild with `mbmeta sweep experiments/{experiment.name} --merge-only`.",
        "",
        f"![learning curve]({CURVE_PLOT})",
        "",
    ]
    interval = f"{100 * curve['confidence']:g} % interval"
    for condition in curve["conditions"]:
        lines += [f"## {condition}", "", f"| method | iteration | transitions | n seeds | mean | s.e. | {interval} |"]
        lines.append("|---|---:|---:|---:|---:|---:|---|")
        for point in curve["points"]:
            est = estimate_of(point["values"][condition], curve["confidence"])
            lines.append(
                f"| `{point['method']}` | {point['iteration']} | {point['transitions']:,.0f} | {est.n} "
                f"| {format_number(est.mean, digits)} | {format_number(est.se, digits)} "
                f"| {format_interval(est, digits)} |"
            )
        lines.append("")
    lines += _render_to_target(curve)
    lines += ["## runs", "", "| method | training seed | evaluation seed | iteration | transitions | status | detail |"]
    lines.append("|---|---:|---:|---:|---:|---|---|")
    for run in curve["runs"]:
        lines.append(
            f"| `{run['method']}` | {run['seed']} | {run['eval_seed']} | {run['iteration']} | {run['transitions']:,} "
            f"| {run['status']} | {run['detail'] or '—'} |"
        )
    return "\n".join(lines) + "\n"


def _render_to_target(curve: dict[str, Any]) -> list[str]:
    """The section on the transitions each method needed to reach ``report.curve_target`` (none if unset)."""
    to_target = curve.get("to_target")
    if not to_target:
        return []
    digits = METRICS[curve["metric"]][1]
    target = format_number(to_target["target"], digits)
    interval = f"{100 * curve['confidence']:g} % interval"
    lines = [
        f"## transitions to reach {target} ({to_target['condition']})",
        "",
        f"Per training seed, the transitions of its first kept checkpoint whose {curve['metric']} is at or above "
        f"{target} (—: none of its checkpoints did); mean, s.e. and interval over the seeds when all reached it.",
        "",
        f"| method | reached | per seed | mean | s.e. | {interval} |",
        "|---|---:|---|---:|---:|---|",
    ]
    for method, row in to_target["methods"].items():
        seeds = ", ".join(f"{s}: {'—' if t is None else f'{t:,.0f}'}" for s, t in row["per_seed"].items())
        est = row["estimate"]
        if est is None:
            cells = "— | — | —"
        else:
            e = estimate_of(est, curve["confidence"])
            cells = f"{e.mean:,.0f} | {format_number(e.se, 0)} | {format_interval(e, 0)}"
        lines.append(f"| `{method}` | {row['reached']} of {row['n']} | {seeds} | {cells} |")
    return [*lines, ""]


def plot_curve(experiment: Experiment, curve: dict[str, Any], path: Path) -> Path:
    """One panel per condition: each method's mean against transitions, its interval shaded (n >= 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conditions = curve["conditions"]
    columns = min(2, len(conditions))
    rows = math.ceil(len(conditions) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 4 * rows), squeeze=False)
    for ax, condition in zip(axes.flat, conditions, strict=False):
        for method in experiment.methods:
            points = [p for p in curve["points"] if p["method"] == method and p["values"][condition]["n"] > 0]
            if not points:
                continue
            x = [p["transitions"] for p in points]
            mean = [p["values"][condition]["mean"] for p in points]
            (line,) = ax.plot(x, mean, marker="o", label=method)
            band = [
                (p["transitions"], p["values"][condition]) for p in points if p["values"][condition]["low"] is not None
            ]
            if band:
                ax.fill_between(
                    [b[0] for b in band], [b[1]["low"] for b in band], [b[1]["high"] for b in band],
                    color=line.get_color(), alpha=0.2, linewidth=0,
                )  # fmt: skip
        ax.set_title(condition)
        ax.set_xlabel("transitions fitted on")
        ax.set_ylabel(METRICS[curve["metric"]][0])
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    for ax in list(axes.flat)[len(conditions) :]:
        ax.set_visible(False)
    confidence = f"{100 * curve['confidence']:g} %"
    fig.suptitle(f"{experiment.name}: mean over training seeds, {confidence} Student-t interval shaded")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
    return path


def write_curve(experiment: Experiment, curve: dict[str, Any]) -> tuple[Path, Path, Path]:
    """Write ``results/curve.md``, ``curve.json`` and ``curve.png`` atomically; returns their paths."""
    results = experiment.root / RESULTS_DIR
    results.mkdir(parents=True, exist_ok=True)
    table = atomic_write(results / CURVE_TABLE, lambda f: f.write(render_curve(experiment, curve).encode()))
    text = json.dumps(curve, indent=1, ensure_ascii=False) + "\n"
    data = atomic_write(results / CURVE_DATA, lambda f: f.write(text.encode()))
    return table, data, plot_curve(experiment, curve, results / CURVE_PLOT)


def merge_curve_and_write(experiment: Experiment, log: Callable[[str], None] = print) -> dict[str, Any] | None:
    """With ``evaluate.every_kept_checkpoint``: merge and write the learning curve, and say where; else None."""
    if not experiment.evaluation.every_kept_checkpoint:
        return None
    curve = merge_curve(experiment)
    table, data, plot = write_curve(experiment, curve)
    log(f"learning curve: {table} (and {data.name}, {plot.name})")
    return curve
