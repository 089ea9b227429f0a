"""Compare `mbmeta evaluate` outputs of the same tasks and seed, paired by task: return, length, success.

Each ``--results`` is a ``results.json`` (or its directory) of one evaluation; the first is the reference. Per
output: the mean over episodes with its standard error and 95 % Student-t interval; per later output: the paired
difference to the reference over the shared (task, seed) episodes. Usage: ``python
experiments/juggler_diagnosis/diagnostics/paired_evaluations.py --results a/ b/ --labels base landing``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mbmeta.evaluation.statistics import estimate

METRICS = ("episode_return", "length", "success")


def episodes(path: str) -> dict[tuple[int, int], dict]:
    """``{(task_id, seed): episode}`` of one results.json."""
    file = Path(path) / "results.json" if Path(path).is_dir() else Path(path)
    return {(e["task_id"], e["seed"]): e for e in json.loads(file.read_text())["episodes"]}


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
    for metric in METRICS:
        print(f"{metric}:")
        for label, run in zip(labels, runs, strict=True):
            print(f"  {label}: {_text([float(e[metric]) for e in run.values()])}")
        for label, run in zip(labels[1:], runs[1:], strict=True):
            shared = sorted(set(run) & set(runs[0]))
            diff = [float(run[k][metric]) - float(runs[0][k][metric]) for k in shared]
            e = estimate(diff)
            verdict = "above" if e.low > 0 else "below" if e.high < 0 else "not established"
            print(f"  {label} - {labels[0]}: {_text(diff)}: {verdict}")


if __name__ == "__main__":
    main()
