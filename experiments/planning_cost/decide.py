"""Issue 19, part 1's decision: the cheapest planner setting that meets the criterion on every measured family.

Reads ``results/<family>/<setting>.json`` (written by ``benchmarks/planning_cost.py``) for each family, and applies
the benchmark's own criterion (``passes``: at least 10× fewer CPU-seconds per environment step than the reference at
every batch size measured, and a return whose 95 % interval overlaps or exceeds the reference's). Among the settings
that pass on *every* family it names the cheapest (the smallest cost relative to the reference, at the worst family
and batch size) and prints its agent settings: what goes into ``experiments/cadm_reference/configs/``. A setting not
yet measured on a family does not pass there.

Usage (from the repository root): ``python experiments/planning_cost/decide.py --families pendulum halfcheetah``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARK = HERE.parents[1] / "benchmarks" / "planning_cost.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("planning_cost_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def decide(results: Path, families: list[str], reference: str = "cadm_exact") -> tuple[str | None, dict[str, dict]]:
    """``(winner or None, {setting: {family: relative cost or None when it does not pass}})``."""
    passing_cost = _benchmark().passing_cost
    measured = {f: {p.stem: json.loads(p.read_text()) for p in (results / f).glob("*.json")} for f in families}
    settings = sorted({s for by_setting in measured.values() for s in by_setting} - {reference})
    table: dict[str, dict[str, float | None]] = {}
    for setting in settings:
        table[setting] = {
            family: passing_cost(measured[family][setting], measured[family][reference])
            if setting in measured[family] and reference in measured[family]
            else None
            for family in families
        }
    passing = {s: max(row.values()) for s, row in table.items() if all(v is not None for v in row.values())}
    return (min(passing, key=passing.get) if passing else None), table


def main(argv: list[str] | None = None) -> None:
    """Print each setting's verdict per family and the winner's agent settings."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", nargs="+", default=["pendulum", "halfcheetah"])
    p.add_argument("--results", type=Path, default=HERE / "results")
    p.add_argument("--reference", default="cadm_exact")
    args = p.parse_args(argv)
    winner, table = decide(args.results, args.families, args.reference)
    for setting, row in table.items():
        cells = ", ".join(f"{f}: {f'passes at {v:.3f}× the cost' if v else 'no'}" for f, v in row.items())
        print(f"{setting}: {cells}")
    if winner is None:
        print("no setting passes on every family yet")
        return
    agent = json.loads((args.results / args.families[0] / f"{winner}.json").read_text())["agent"]
    print(f"winner: {winner}\nagent settings: {json.dumps(agent)}")


if __name__ == "__main__":
    main()
