"""The merged table of an experiment: every declared evaluation on disk, summarised across training seeds.

Reads ``results/<method>-seed<s>/eval<e>/results.json`` (``protocol.json`` with ``evaluate.protocol: cadm``) for every
evaluation the experiment declares, checks each against its ``sweep.json`` stamp (same evaluation settings as the
design; results of other settings are reported as stale and left out), and writes ``results/table.md`` (for people)
and ``results/summary.json`` (for programs). Every declared run appears: done, failed (training or evaluation, with
its log), incomplete, stale or missing; result directories the design does not declare are listed too, so nothing
on disk is silently ignored or silently used.

Each training seed is reduced first (its episodes over every evaluation seed), then summarised across seeds. Under
CaDM's protocol a seed's number in a condition (``train``, ``c0`` …) is the mean return of its episodes there, and
in an average (``moderate``, ``extreme``, ``test``) the mean of its conditions' numbers, as CaDM reports them
(:func:`~mbmeta.evaluation.protocol.protocol_scores`); the headline is the moderate average (CaDM's Table 1).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mbmeta.data.atomic import atomic_write
from mbmeta.evaluation.protocol import GROUP_ORDER, TEST, TRAIN, protocol_scores
from mbmeta.evaluation.statistics import CONFIDENCE, Estimate, verdict
from mbmeta.evaluation.tables import (
    OVERALL,
    Difference,
    MethodSummary,
    condition_table,
    conditions_for,
    difference_table,
    difference_values,
    format_interval,
    format_number,
    method_table,
    metric_info,
    paired_differences,
    summarise_methods,
    summarise_values,
)
from mbmeta.runs.experiment import RESULTS_DIR, EvaluationRun, Experiment
from mbmeta.runs.software import evaluation_software, software_lines, training_software
from mbmeta.runs.sweep import REPLACED_DIR, STAMP_FILE, evaluation_settings, read_stamp

TABLE_FILE = "table.md"
SUMMARY_FILE = "summary.json"
PROTOCOL_HEADLINE = "moderate"  # CaDM's Table 1 reports the moderate test average


@dataclass(frozen=True)
class RunStatus:
    """Where one declared evaluation stands.

    Attributes:
        evaluation: the evaluation.
        status: ``done``, ``failed``, ``incomplete`` (started, not finished), ``stale`` (results of other settings)
            or ``missing``.
        detail: why, for anything but done (e.g. which step failed and its log).
    """

    evaluation: EvaluationRun
    status: str
    detail: str = ""


def evaluation_status(experiment: Experiment, evaluation: EvaluationRun) -> RunStatus:
    """The status of one declared evaluation, from its stamp and its training run's stamp."""
    status, detail = output_status(experiment, evaluation.out_dir, evaluation_settings(experiment, evaluation))
    if status != "missing" or evaluation.training is None:  # a reference policy has no training to look at
        return RunStatus(evaluation, status, detail)
    training = read_stamp(experiment.root / evaluation.training.run_dir)
    if training is not None and training.get("status") == "failed":
        detail = training.get("detail") or f"training failed, see {evaluation.training.run_dir}/train.log"
        return RunStatus(evaluation, "failed", detail)
    if training is not None and training.get("status") == "running":
        return RunStatus(evaluation, "incomplete", "training started but did not finish")
    return RunStatus(evaluation, "missing", "not run yet")


def output_status(experiment: Experiment, out_dir: str, settings: dict[str, Any]) -> tuple[str, str]:
    """``(status, detail)`` of one evaluation output from its stamp: done, failed, incomplete, stale or missing."""
    directory = experiment.root / out_dir
    results_file = experiment.evaluation.results_file
    stamp = read_stamp(directory)
    if stamp is not None and stamp.get("status") == "done":
        if not (directory / results_file).is_file():
            return "incomplete", f"{out_dir}/{results_file} is missing"
        if stamp.get("settings") != settings:
            return "stale", "evaluated with other settings than the design's"
        return "done", ""
    if stamp is not None and stamp.get("status") == "failed":
        return "failed", f"evaluation failed, see {out_dir}/evaluate.log"
    if stamp is not None and stamp.get("status") == "running":
        return "incomplete", "evaluation started but did not finish"
    if (directory / results_file).is_file():
        return "stale", f"results without a {STAMP_FILE}: settings unknown"
    return "missing", "not run yet"


def read_output(experiment: Experiment, out_dir: str) -> dict[str, Any]:
    """One evaluation output (``results.json``, or ``protocol.json`` with a protocol), checked to be this design's.

    Raises:
        ValueError: not valid JSON, or results of another family, split or protocol (names the file).
    """
    settings = experiment.evaluation
    path = experiment.root / out_dir / settings.results_file
    try:
        results = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from err
    family = results.get("family")
    if settings.protocol is not None:
        if family != experiment.family or results.get("protocol") != settings.protocol:
            found = f"protocol {results.get('protocol')} on {family}"
            raise ValueError(f"{path} holds {found}, not protocol {settings.protocol} on {experiment.family}")
    else:
        split = results.get("split")
        if family not in (None, experiment.family) or split not in (None, settings.split):
            raise ValueError(f"{path} evaluates {family}/{split}, not {experiment.family}/{settings.split}")
    return results


def method_episodes(experiment: Experiment, out_dir: str, results: dict[str, Any], method: str) -> list[dict[str, Any]]:
    """The episodes labelled ``method`` in an output :func:`read_output` returned.

    Raises:
        ValueError: it holds no episode of the method (names the file).
    """
    episodes = [e for e in results.get("episodes", []) if e.get("method") == method]
    if not episodes:
        path = experiment.root / out_dir / experiment.evaluation.results_file
        raise ValueError(f"{path} holds no episode labelled {method!r}")
    return episodes


def load_output(experiment: Experiment, out_dir: str, method: str) -> list[dict[str, Any]]:
    """The episodes of one method in an evaluation output (:func:`read_output`, :func:`method_episodes`)."""
    return method_episodes(experiment, out_dir, read_output(experiment, out_dir), method)


def done_outputs(
    experiment: Experiment, statuses: list[RunStatus] | None = None
) -> Iterator[tuple[EvaluationRun, dict[str, Any]]]:
    """Each done evaluation (of ``statuses``, default: every declared one) with its output, read once."""
    if statuses is None:
        statuses = [evaluation_status(experiment, e) for e in experiment.evaluation_runs()]
    for status in statuses:
        if status.status == "done":
            yield status.evaluation, read_output(experiment, status.evaluation.out_dir)


def evaluation_releases(experiment: Experiment) -> dict[str, dict[str, str] | None]:
    """``{out_dir: versions or None}`` of every done evaluation, without merging (what a sweep checks at its start)."""
    return {evaluation.out_dir: evaluation_software(results) for evaluation, results in done_outputs(experiment)}


Rows = dict[str, dict[int, list[dict[str, Any]]]]  # method -> training seed -> episodes (over evaluation seeds)


def protocol_values(rows: Rows, order: list[str] | None = None) -> tuple[list[str], dict[str, dict[str, dict]]]:
    """Per method, condition and training seed, the seed's protocol score (:func:`protocol_scores` of its episodes).

    Returns:
        The conditions and averages: ``order`` (also those without results yet), then any other found, in order of
        appearance; and ``method -> condition -> seed -> value``.
    """
    values: dict[str, dict[str, dict[int, float]]] = {method: {} for method in rows}
    seen: dict[str, None] = {}
    for method, by_seed in rows.items():
        for seed, episodes in sorted(by_seed.items()):
            for score in protocol_scores(episodes):
                values[method].setdefault(score.name, {})[seed] = score.mean
                seen.setdefault(score.name)
    ordered = list(order or [])
    return ordered + [name for name in seen if name not in ordered], values


def protocol_order(family: str) -> tuple[list[str], dict[str, str]]:
    """The report order of a family's protocol conditions and averages, and what each covers (empty if unknown)."""
    from mbmeta.envs import get_family
    from mbmeta.evaluation.protocol import condition_descriptions, protocol_conditions

    try:
        found = get_family(family)
        names = [c.name for c in protocol_conditions(found)]
        descriptions = condition_descriptions(found)
    except (KeyError, ValueError):
        return [TRAIN, *GROUP_ORDER, TEST], {}
    return [*names, *GROUP_ORDER, TEST], descriptions


def undeclared_results(experiment: Experiment) -> list[str]:
    """Result directories on disk that the design does not declare (relative paths; ``replaced/`` excluded)."""
    declared = {e.out_dir for e in experiment.evaluation_runs()}
    results = experiment.root / RESULTS_DIR
    found = {
        str(p.parent.relative_to(experiment.root))
        for pattern in (f"*/*/{experiment.evaluation.results_file}", f"*/*/{STAMP_FILE}")
        for p in results.glob(pattern)
        if p.parent.parent.name != REPLACED_DIR
    }
    return sorted(found - declared)


def merge(experiment: Experiment, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Summarise every done evaluation of the experiment; returns what :func:`write_merged` writes."""
    statuses = [evaluation_status(experiment, e) for e in experiment.evaluation_runs()]
    episodes: Rows = {m: {} for m in experiment.methods}
    software: dict[str, Any] = {"evaluations": {}, "trainings": {}}
    for evaluation, results in done_outputs(experiment, statuses):
        seed_episodes = episodes[evaluation.method].setdefault(evaluation.seed, [])
        seed_episodes += method_episodes(experiment, evaluation.out_dir, results, evaluation.method)
        software["evaluations"][evaluation.out_dir] = evaluation_software(results)
        if evaluation.training is not None and evaluation.training.run_dir not in software["trainings"]:
            run_dir = evaluation.training.run_dir
            software["trainings"][run_dir] = training_software(experiment.root / run_dir)
    protocol: dict[str, Any] = {}
    if experiment.evaluation.protocol is not None:
        order, descriptions = protocol_order(experiment.family)
        names, values = protocol_values(episodes, order)
        rows = summarise_values(values, names, confidence)
        differences = difference_values(values, experiment.comparisons, names, confidence)
        metrics = {"episode_return": {"methods": _method_dict(rows), "differences": _difference_dict(differences)}}
        protocol = {
            "protocol": experiment.evaluation.protocol,
            "protocol_episodes": experiment.evaluation.protocol_episodes,
            "headline": PROTOCOL_HEADLINE,
            "conditions": names,
            "condition_descriptions": {name: descriptions.get(name, "") for name in names},
        }
    else:
        conditions = conditions_for(episodes, experiment.conditions)
        metrics = {}
        for metric in experiment.metrics:
            rows = summarise_methods(episodes, metric, conditions, confidence)
            differences = paired_differences(episodes, experiment.comparisons, metric, conditions, confidence)
            metrics[metric] = {"methods": _method_dict(rows), "differences": _difference_dict(differences)}
    published = published_comparison(experiment, metrics, confidence)
    return {
        "experiment": experiment.name,
        "family": experiment.family,
        "split": experiment.evaluation.split,
        "confidence": confidence,
        "description": experiment.description,
        "budget": experiment.budget,
        "evaluation_seeds": list(experiment.evaluation.seeds),
        "named_conditions": {name: list(values) for name, values in experiment.conditions.items()},
        **protocol,
        "metrics": metrics,
        **({"published": published} if published is not None else {}),
        "runs": [
            {
                "method": s.evaluation.method,
                "seed": s.evaluation.seed,
                "eval_seed": s.evaluation.eval_seed,
                "training": None if s.evaluation.training is None else s.evaluation.training.name,
                "status": s.status,
                "detail": s.detail,
                "path": s.evaluation.out_dir,
            }
            for s in statuses
        ],
        "not_in_design": undeclared_results(experiment),
        "software": software,
    }


def estimate_dict(est: Estimate, per_seed: dict[int, float]) -> dict[str, Any]:
    """An estimate as ``summary.json`` stores it: mean, se, low, high (None if undefined), n, per-seed values."""
    finite = {k: (v if math.isfinite(v) else None) for k, v in (("se", est.se), ("low", est.low), ("high", est.high))}
    mean = est.mean if math.isfinite(est.mean) else None
    return {"mean": mean, **finite, "n": est.n, "per_seed": {str(s): v for s, v in per_seed.items()}}


def _method_dict(rows: list[MethodSummary]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        out.setdefault(row.method, {})[row.condition] = estimate_dict(row.estimate, row.per_seed)
    return out


def _difference_dict(rows: list[Difference]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = {**estimate_dict(row.estimate, row.per_seed), "verdict": row.verdict}
        out.setdefault(f"{row.first} - {row.second}", {})[row.condition] = entry
    return out


def published_comparison(
    experiment: Experiment, metrics: dict[str, Any], confidence: float = CONFIDENCE
) -> dict[str, Any] | None:
    """Ours beside the experiment's published numbers (``report.published``), None when it declares none.

    A published number is taken as exact (papers such as CaDM give no interval or seed count): ours minus it has our
    standard error and interval shifted by it, and the verdict says ``above`` or ``below`` only when that interval
    excludes zero. Rows without a result of ours yet have ``n`` 0 and no verdict.

    Returns:
        ``{"source", "metric", "rows": [{"condition", "method", "published", "ours", "difference", "verdict"}]}``
        with ``ours`` and ``difference`` as :func:`estimate_dict` stores an estimate (no per-seed values for the
        difference).
    """
    if experiment.published is None:
        return None
    metric = experiment.metrics[0]
    methods = metrics.get(metric, {}).get("methods", {})
    rows = []
    for condition, by_method in experiment.published.values.items():
        for method, value in by_method.items():
            entry = methods.get(method, {}).get(condition)
            if entry is None:
                entry = {"mean": None, "se": None, "low": None, "high": None, "n": 0, "per_seed": {}}
            ours = estimate_of(entry, confidence)
            shifted = Estimate(ours.mean - value, ours.se, ours.low - value, ours.high - value, ours.n, confidence)
            difference = {k: v for k, v in estimate_dict(shifted, {}).items() if k != "per_seed"}
            verdict_text = verdict(shifted) if ours.n else "—"
            rows.append(
                {"condition": condition, "method": method, "published": value, "ours": entry,
                 "difference": difference, "verdict": verdict_text}
            )  # fmt: skip
    return {"source": experiment.published.source, "metric": metric, "rows": rows}


def published_table(summary: dict[str, Any]) -> list[str]:
    """The Markdown section of the published comparison (empty when the summary has none)."""
    published = summary.get("published")
    if not published:
        return []
    digits, confidence = metric_info(published["metric"])[1], summary["confidence"]
    lines = [
        f"## published numbers: {published['source']}",
        "",
        f"{metric_info(published['metric'])[0].capitalize()} as published (no interval or seed count given: taken as "
        "exact) beside "
        f"ours; ours − published has our standard error and {100 * confidence:g} % interval, and `above` or `below` "
        "only when that interval excludes zero. Where the protocols differ, see the experiment's README.",
        "",
        f"| condition | method | published | ours | n seeds | ours − published | {100 * confidence:g} % interval | "
        "verdict |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for row in published["rows"]:
        ours = estimate_of(row["ours"], confidence)
        diff = estimate_of({**row["difference"], "per_seed": {}}, confidence)
        lines.append(
            f"| {row['condition']} | `{row['method']}` | {format_number(row['published'], digits)} "
            f"| {format_number(ours.mean, digits)} | {ours.n} | {format_number(diff.mean, digits, signed=True)} "
            f"| {format_interval(diff, digits, signed=True)} | {row['verdict']} |"
        )
    return [*lines, ""]


def write_merged(experiment: Experiment, summary: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``results/table.md`` and ``results/summary.json`` atomically; returns their paths."""
    results = experiment.root / RESULTS_DIR
    results.mkdir(parents=True, exist_ok=True)
    table = atomic_write(results / TABLE_FILE, lambda f: f.write(render_table(experiment, summary).encode()))
    text = json.dumps(summary, indent=1, ensure_ascii=False) + "\n"
    data = atomic_write(results / SUMMARY_FILE, lambda f: f.write(text.encode()))
    return table, data


# ----- the Markdown table --------------------------------------------------------------------------------------------


def _rows_from(
    summary_methods: dict[str, Any], condition: str, order: list[str], confidence: float
) -> list[MethodSummary]:
    rows = []
    for method in order:
        entry = summary_methods.get(method, {}).get(condition)
        if entry is None:
            entry = {"mean": None, "se": None, "low": None, "high": None, "n": 0, "per_seed": {}}
        rows.append(MethodSummary(method, condition, _per_seed(entry), estimate_of(entry, confidence)))
    return rows


def _per_seed(entry: dict[str, Any]) -> dict[int, float]:
    return {int(s): v for s, v in entry["per_seed"].items()}


def estimate_of(entry: dict[str, Any], confidence: float) -> Estimate:
    """The :class:`Estimate` of an entry as :func:`estimate_dict` stores it."""

    def number(key: str) -> float:
        return math.nan if entry.get(key) is None else float(entry[key])

    return Estimate(number("mean"), number("se"), number("low"), number("high"), int(entry["n"]), confidence)


def _run_notes(summary: dict[str, Any]) -> dict[str, str]:
    """Per method, how its declared evaluations stand: ``n done, m failed, ...``."""
    counts: dict[str, dict[str, int]] = {}
    for run in summary["runs"]:
        method_counts = counts.setdefault(run["method"], {})
        method_counts[run["status"]] = method_counts.get(run["status"], 0) + 1
    order = ("done", "failed", "incomplete", "stale", "missing")
    return {m: ", ".join(f"{c[s]} {s}" for s in order if s in c) for m, c in counts.items()}


def headline(summary: dict[str, Any]) -> str:
    """The condition the headline table shows: ``overall``, or the moderate average under CaDM's protocol."""
    return summary.get("headline", OVERALL)


def _condition_section(experiment: Experiment, summary: dict[str, Any], metric: str, condition: str) -> list[str]:
    """The method table of one condition (with the run counts for the headline) and its paired differences."""
    digits, confidence = metric_info(metric)[1], summary["confidence"]
    tables = summary["metrics"][metric]
    rows = _rows_from(tables["methods"], condition, list(experiment.methods), confidence)
    notes = _run_notes(summary) if condition == headline(summary) else None
    lines = [method_table(rows, digits, notes), ""]
    differences = [
        Difference(a, b, condition, _per_seed(entry), estimate_of(entry, confidence))
        for a, b in experiment.comparisons
        if (entry := tables["differences"].get(f"{a} - {b}", {}).get(condition)) is not None
    ]
    if differences:
        lines += [difference_table(differences, digits), ""]
    return lines


def headline_table(experiment: Experiment, summary: dict[str, Any]) -> str:
    """The overall table of the first metric and its differences (what ``mbmeta sweep`` prints at the end)."""
    metric, condition = experiment.metrics[0], headline(summary)
    title = f"{experiment.name}: {metric_info(metric)[0]}, {condition}"
    return "\n".join([title, "", *_condition_section(experiment, summary, metric, condition)]).rstrip() + "\n"


def render_table(experiment: Experiment, summary: dict[str, Any]) -> str:
    """The Markdown of ``results/table.md``."""
    if "protocol" in summary:
        return render_protocol_table(experiment, summary)
    methods = list(experiment.methods)
    confidence = summary["confidence"]
    e = experiment.evaluation
    tasks = "every task of the split" if e.tasks is None else f"{e.tasks} tasks of the split"
    lines = _page_head(
        experiment,
        f"Family `{experiment.family}`, `{e.split}` split: {tasks} × {e.episodes_per_task} episode(s), evaluation "
        f"seed(s) {', '.join(map(str, e.seeds))}. Each training seed counts once: the mean of its episodes (over "
        "every evaluation seed, task and episode), then across seeds the mean, its standard error, the two-sided "
        f"{100 * confidence:g} % Student-t interval and n. Differences are paired by training seed; a verdict says "
        "`above` or `below` only when the interval of the difference excludes zero." + _policy_note(experiment),
    )
    lines += published_table(summary)
    for metric in experiment.metrics:
        named = [OVERALL, *experiment.conditions]
        lines += [f"## {metric_info(metric)[0]}", ""]
        for condition in named:
            lines += [f"### {condition}", "", *_condition_section(experiment, summary, metric, condition)]
        methods_summary = summary["metrics"][metric]["methods"]
        task_rows = [
            row
            for condition in _task_conditions(methods_summary, named)
            for row in _rows_from(methods_summary, condition, methods, confidence)
        ]
        if task_rows:
            lines += ["### per task", "", condition_table(task_rows, methods, metric_info(metric)[1]), ""]
    return "\n".join(lines + _software_section(summary) + _runs_section(summary)) + "\n"


def _policy_note(experiment: Experiment) -> str:
    """What a reference policy's seeds are, for a table that has such methods ("" otherwise)."""
    policies = [f"`{m.name}` ({m.policy})" for m in experiment.methods.values() if m.policy is not None]
    if not policies:
        return ""
    return (
        f" Reference policies {', '.join(policies)} are not trained: their seeds seed the policy (the scripted "
        "controller ignores it) and pair with the training seeds of the same number."
    )


def _page_head(experiment: Experiment, about: str) -> list[str]:
    """The top of ``results/table.md``: title, description, what the numbers are (``about``), how to rebuild, budget."""
    lines = [f"# {experiment.name}: merged results", ""]
    lines += [experiment.description, ""] if experiment.description else []
    lines += [
        about,
        "",
        f"Rebuild with `mbmeta sweep experiments/{experiment.name} --merge-only`; reproduce with "
        f"`mbmeta sweep experiments/{experiment.name}`.",
        "",
    ]
    if experiment.budget:
        lines += ["Budget: " + "; ".join(f"{k}: {v}" for k, v in experiment.budget.items()) + ".", ""]
    return lines


def _software_section(summary: dict[str, Any]) -> list[str]:
    """The releases the evaluations and trainings ran under (summaries merged before it was recorded have none)."""
    return software_lines(summary["software"]) if "software" in summary else []


def _runs_section(summary: dict[str, Any]) -> list[str]:
    lines = ["## runs", "", "| method | training seed | evaluation seed | status | detail |", "|---|---:|---:|---|---|"]
    for run in summary["runs"]:
        lines.append(
            f"| `{run['method']}` | {run['seed']} | {run['eval_seed']} | {run['status']} | {run['detail'] or '—'} |"
        )
    if summary["not_in_design"]:
        lines += ["", "Result directories not in the design (not merged): " + ", ".join(summary["not_in_design"])]
    return lines


def render_protocol_table(experiment: Experiment, summary: dict[str, Any]) -> str:
    """The Markdown of ``results/table.md`` under CaDM's protocol: the headline, every condition, the runs."""
    methods, confidence = list(experiment.methods), summary["confidence"]
    e = experiment.evaluation
    episodes = "the family's (CaDM's) number of" if e.protocol_episodes is None else f"{e.protocol_episodes}"
    describe = summary["condition_descriptions"]
    lines = _page_head(
        experiment,
        f"Family `{experiment.family}`, CaDM's evaluation protocol (`mbmeta evaluate --protocol {e.protocol}`): the "
        f"train set and each test condition, {episodes} episodes each, every episode on its own task drawn as CaDM "
        f"draws them; evaluation seed(s) {', '.join(map(str, e.seeds))}. Each training seed counts once: its number "
        "in a condition is the mean return of its episodes there (over every evaluation seed), in an average the "
        "mean of its conditions' numbers, as CaDM reports them; across seeds the mean, its standard error, the "
        f"two-sided {100 * confidence:g} % Student-t interval and n. Differences are paired by training seed; a "
        "verdict says `above` or `below` only when the interval of the difference excludes zero. The headline is "
        "the moderate average, the number CaDM's Table 1 reports." + _estimator_note(experiment),
    )
    lines += published_table(summary)
    lines += ["## episode return, every condition", ""]
    table_rows = [
        row
        for name in summary["conditions"]
        for row in _rows_from(summary["metrics"]["episode_return"]["methods"], name, methods, confidence)
    ]
    if table_rows:
        lines += [condition_table(table_rows, methods, metric_info("episode_return")[1]), ""]
    names = [headline(summary), *(n for n in summary["conditions"] if n != headline(summary))]
    for name in names:
        title = f"### {name}" + (f" ({describe[name]})" if describe.get(name) else "")
        lines += [title, "", *_condition_section(experiment, summary, "episode_return", name)]
    return "\n".join(lines + _software_section(summary) + _runs_section(summary)) + "\n"


def _estimator_note(experiment: Experiment) -> str:
    """A sentence naming the methods evaluated with CaDM's own estimator (``protocol_estimator``), else empty."""
    names = [f"`{m.name}`" for m in experiment.methods.values() if m.protocol_estimator == "first_finished"]
    if not names:
        return ""
    return (
        f" {', '.join(names)} {'is' if len(names) == 1 else 'are'} evaluated with CaDM's own estimator instead "
        f"(`--protocol_estimator first_finished`): {experiment.evaluation.num_envs} environments restart on new tasks "
        "of the condition until that many episodes have finished, and those are averaged, so where failures end "
        "episodes early the failed ones weigh more."
    )


def _task_conditions(methods: dict[str, Any], exclude: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for conditions in methods.values():
        for condition in conditions:
            if condition not in exclude:
                seen.setdefault(condition)
    return list(seen)


def merge_and_write(experiment: Experiment, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Merge, write ``table.md`` and ``summary.json``, and say where; returns the summary."""
    summary = merge(experiment)
    table, data = write_merged(experiment, summary)
    log(f"merged table: {table} (and {data.name})")
    return summary
