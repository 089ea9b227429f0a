"""The fine-tuned transfer table of juggler_servo_comparison (issue 20): balance time after 0, 1 and 5 episodes.

Reads ``results/transfer/<method>-seed<s>/task<k>/transfer.json`` (written by ``transfer.sh``, one
``mbmeta transfer`` per model and transfer task) and writes ``results/transfer/table.md``. For every method, data
size and model kind (``zero-shot``: the meta-trained model adapted from context only; ``finetune``: all its weights
fine-tuned on the new task's episodes; ``scratch``: a model trained on those episodes alone), a training seed's
number is its mean balance time (episode length, of 250 steps) over every transfer task and evaluation episode;
across seeds the mean, standard error, 95 % Student-t interval and n. Only seeds with every transfer task done are
counted (the others are listed). Paired by training seed: fine-tune − zero-shot, fine-tune − scratch and, per row,
``context`` − ``none``; "above" / "below" only when the interval of the difference excludes zero.

Usage: ``python experiments/juggler_servo_comparison/transfer_table.py [--root experiments/juggler_servo_comparison]``
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from mbmeta.evaluation.statistics import estimate, verdict
from mbmeta.evaluation.tables import format_interval, format_number

TASKS = (1, 5, 8, 15)  # the transfer tasks of the design (README, "Fine-tuned transfer")
METHODS = ("context", "none")
RUN = re.compile(r"^(?P<method>.+)-seed(?P<seed>\d+)$")

Key = tuple[str, int]  # (model kind, episodes of the new task)


def load(root: Path) -> tuple[dict[str, dict[int, dict[Key, float]]], list[str]]:
    """``method -> seed -> (kind, episodes) -> mean balance time`` over complete seeds, and the incomplete ones."""
    values: dict[str, dict[int, dict[Key, float]]] = {}
    incomplete = []
    for run in sorted((root / "results" / "transfer").glob("*-seed*")):
        match = RUN.match(run.name)
        if match is None or match["method"] not in METHODS:
            continue
        files = [run / f"task{k}" / "transfer.json" for k in TASKS]
        missing = [f.parent.name for f in files if not f.is_file()]
        if missing:
            incomplete.append(f"{run.name} ({', '.join(missing)} not done)")
            continue
        lengths: dict[Key, list[float]] = {}
        for file in files:
            try:
                rows = json.loads(file.read_text())["rows"]
            except (json.JSONDecodeError, KeyError) as err:
                raise SystemExit(f"{file}: not a transfer.json with rows ({err})") from None
            for row in rows:
                lengths.setdefault((row["method"], int(row["episodes"])), []).extend(float(v) for v in row["lengths"])
        per_seed = {key: sum(v) / len(v) for key, v in lengths.items()}
        values.setdefault(match["method"], {})[int(match["seed"])] = per_seed
    return values, incomplete


def _cell(per_seed: dict[int, float]) -> str:
    est = estimate(list(per_seed.values()))
    if not est.has_interval:
        return f"{format_number(est.mean)} (n = {est.n})"
    return f"{format_number(est.mean)} ± {format_number(est.se)} {format_interval(est)} (n = {est.n})"


def _difference(a: dict[int, float], b: dict[int, float]) -> str:
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return "—"
    est = estimate([a[s] - b[s] for s in seeds])
    interval = f" {format_interval(est, signed=True)}" if est.has_interval else ""
    return f"{format_number(est.mean, signed=True)}{interval} (n = {est.n}): {verdict(est)}"


def table(values: dict[str, dict[int, dict[Key, float]]], incomplete: list[str]) -> str:
    """The Markdown of ``results/transfer/table.md``."""

    def column(method: str, key: Key) -> dict[int, float]:
        return {seed: rows[key] for seed, rows in values.get(method, {}).items() if key in rows}

    keys = [("zero-shot", 0), ("finetune", 1), ("scratch", 1), ("finetune", 5), ("scratch", 5)]
    lines = [
        "# juggler_servo_comparison: fine-tuned transfer",
        "",
        f"Written by `python experiments/juggler_servo_comparison/transfer_table.py` from results/transfer. Balance "
        f"time (steps of 250) on the transfer tasks {', '.join(map(str, TASKS))} of the test split, 2 evaluation "
        "episodes each, after 0, 1 or 5 random-action episodes of the task: per training seed the mean over tasks "
        "and episodes; across seeds mean ± s.e., 95 % interval, n. Differences are paired by training seed. A scratch "
        "model is trained on the new task's episodes alone (the same episodes and transfer seed for every training "
        "seed), so its rows repeat one model: their spread is zero by construction, not a measured one.",
        "",
        "| model | episodes of the new task | " + " | ".join(f"`{m}`" for m in METHODS) + " | `context` − `none` |",
        "|---|---:|" + "---:|" * len(METHODS) + "---|",
    ]
    for kind, episodes in keys:
        cells = [_cell(column(m, (kind, episodes))) if column(m, (kind, episodes)) else "—" for m in METHODS]
        diff = _difference(column("context", (kind, episodes)), column("none", (kind, episodes)))
        if kind == "scratch":  # trained on the new task's episodes alone: one model whatever the training seed
            diff = "— (scratch does not depend on the training seed)"
        lines.append(f"| {kind} | {episodes} | " + " | ".join(cells) + f" | {diff} |")
    lines += ["", "| method | episodes | fine-tune − zero-shot | fine-tune − scratch |", "|---|---:|---|---|"]
    for method in METHODS:
        for episodes in (1, 5):
            tuned = column(method, ("finetune", episodes))
            lines.append(
                f"| `{method}` | {episodes} | {_difference(tuned, column(method, ('zero-shot', 0)))} "
                f"| {_difference(tuned, column(method, ('scratch', episodes)))} |"
            )
    if incomplete:
        lines += ["", "Not counted (a transfer task is missing): " + "; ".join(incomplete) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write and print ``results/transfer/table.md`` from the transfer outputs on disk."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    values, incomplete = load(args.root)
    out = args.root / "results" / "transfer" / "table.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table(values, incomplete))
    print(out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
