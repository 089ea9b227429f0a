"""Compare `mbmeta evaluate` outputs of the same tasks and seed, paired by task: return, length, success, measures.

Each ``--results`` is a ``results.json`` (or its directory) of one evaluation; the first is the reference. Per
output: the mean over episodes with its standard error and 95 % Student-t interval; per later output: the paired
difference to the reference over the shared (task, seed) episodes. The family's measures (``TaskFamily.measures``,
e.g. the bounce's target apexes) follow where every output records them; then one line per task. Usage: ``python
experiments/juggler_diagnosis/diagnostics/paired_evaluations.py --results a/ b/ --labels base landing``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mbmeta.evaluation.statistics import estimate, verdict

METRICS = ("episode_return", "length", "success")


def episodes(path: str) -> dict[tuple[int, int], dict]:
    """``{(task_id, seed): episode}`` of one results.json."""
    file = Path(path) / "results.json" if Path(path).is_dir() else Path(path)
    return {(e["task_id"], e["seed"]): e for e in json.loads(file.read_text())["episodes"]}


def value(episode: dict, metric: str) -> float:
    """An episode's ``metric``: a field of the record or one of its ``measures``."""
    return float(episode[metric] if metric in episode else episode["measures"][metric])


def shared_measures(runs: list[dict[tuple[int, int], dict]]) -> list[str]:
    """The measures every episode of every run records, sorted."""
    sets = [set(e.get("measures", {})) for run in runs for e in run.values()]
    return sorted(set.intersection(*sets)) if sets else []


def _text(values: list[float]) -> str:
    e = estimate(values)
    return f"{e.mean:.2f} ± {e.se:.2f} [{e.low:.2f}, {e.high:.2f}] (n = {e.n})"


def main(argv: list[str] | None = None) -> None:
    """Print the table of means and paired differences."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", nargs="+", required=True, help="results.json files or their directories")
    p.add_argument("--labels", nargs="+", default=None, help="one name per --results (default: the paths)")
    args = p.parse_args(argv)
    labels = args.labels or args.results
    if len(labels) != len(args.results):
        raise SystemExit(f"--labels: {len(labels)} given for {len(args.results)} --results")
    runs = [episodes(r) for r in args.results]
    measures = shared_measures(runs)
    for metric in (*METRICS, *measures):
        print(f"{metric}:")
        for label, run in zip(labels, runs, strict=True):
            print(f"  {label}: {_text([value(e, metric) for e in run.values()])}")
        for label, run in zip(labels[1:], runs[1:], strict=True):
            shared = sorted(set(run) & set(runs[0]))
            diff = [value(run[k], metric) - value(runs[0][k], metric) for k in shared]
            print(f"  {label} - {labels[0]}: {_text(diff)}: {verdict(estimate(diff))}")
    columns = ["length", "success", *measures]
    print(f"# per task: {', '.join(columns)} ({' | '.join(labels)})")
    for key in sorted(runs[0]):
        task = " ".join(f"{k}={v:g}" for k, v in runs[0][key]["task"].items())
        cells = [" ".join(f"{value(run[key], c):g}" for c in columns) if key in run else "-" for run in runs]
        print(f"{task} seed {key[1]} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
