"""Mean test return per method and training seed, from `mbmeta evaluate` results files (docs/results.md).

    python docs/results/seed_table.py SEED=results.json [SEED=results.json@LABEL ...]

``@LABEL`` files every episode of that file under the method name LABEL (e.g. a variant evaluated as `context`).

Each file may hold one or several methods. Prints a Markdown table: the mean return per seed, the mean and sd over
seeds, the per-task gain over `none` (mean over seeds of method - none on each task, then mean ± standard error
over tasks), the tasks on which the method beats `none`, the gap to `oracle` as a fraction of oracle's mean, and
the success rate where the results record it. The per-seed gain is the paired difference of seed means
(method - none on the same training seed), mean ± standard error over the seeds both have: the column to read when
seeds, not tasks, are the main source of variance.
"""

import json
import sys
from collections import defaultdict

import numpy as np


def main(arguments: list[str]) -> None:
    """Read ``SEED=path`` arguments and print the table."""
    # returns[method][seed][task] -> list of episode returns; success[method] -> list of bools
    returns: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    success: dict = defaultdict(list)
    for argument in arguments:
        seed, path = argument.split("=", 1)
        path, _, label = path.partition("@")
        for e in json.load(open(path))["episodes"]:
            task = tuple(sorted(e["task"].items()))
            method = label or e["method"]
            returns[method][seed][task].append(e["episode_return"])
            if e.get("success") is not None:
                success[method].append(e["success"])
    order = [m for m in ("none", "context", "gradient", "recurrent", "oracle") if m in returns]
    order += [m for m in returns if m not in order]
    seeds = sorted({s for m in returns.values() for s in m}, key=int)

    def seed_mean(method: str, seed: str) -> float:
        tasks = returns[method].get(seed)
        return float(np.mean([r for v in tasks.values() for r in v])) if tasks else float("nan")

    def task_means(method: str) -> dict:
        """Per task: mean over the seeds this method and `none` share of the per-seed task means."""
        shared = [s for s in seeds if s in returns[method] and s in returns.get("none", {})]
        tasks = returns[method][shared[0]].keys() if shared else []
        return {t: np.mean([np.mean(returns[method][s][t]) for s in shared]) for t in tasks}, shared

    oracle = np.nanmean([seed_mean("oracle", s) for s in seeds]) if "oracle" in returns else float("nan")
    header = ["method", *[f"seed {s}" for s in seeds], "mean (sd over seeds)", "Δ vs `none` per seed",
              "Δ vs `none` per task", "tasks better than `none`", "gap to `oracle`", "success"]  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    none_tasks = task_means("none")[0] if "none" in returns else {}
    for method in order:
        per_seed = [seed_mean(method, s) for s in seeds]
        valid = [v for v in per_seed if not np.isnan(v)]
        cells = [f"`{method}`", *[("—" if np.isnan(v) else f"{v:.1f}") for v in per_seed]]
        cells.append(f"{np.mean(valid):.1f} ({np.std(valid, ddof=1) if len(valid) > 1 else 0:.1f})")
        if method != "none" and none_tasks:
            mine, shared = task_means(method)
            # none's task means over the same seeds
            base = {t: np.mean([np.mean(returns["none"][s][t]) for s in shared]) for t in mine}
            gains = np.array([mine[t] - base[t] for t in mine])
            paired = np.array([seed_mean(method, s) - seed_mean("none", s) for s in shared])
            spread = f" ± {paired.std(ddof=1) / np.sqrt(len(paired)):.1f}" if len(paired) > 1 else ""
            cells.append(f"{paired.mean():+.1f}{spread} (n = {len(paired)})")
            cells.append(f"{gains.mean():+.1f} ± {gains.std(ddof=1) / np.sqrt(len(gains)):.1f}")
            cells.append(f"{int((gains > 0).sum())} / {len(gains)}")
        else:
            cells += ["—", "—", "—"]
        gap = (oracle - np.mean(valid)) / abs(oracle) if method != "oracle" and not np.isnan(oracle) else None
        cells.append("—" if gap is None else f"{100 * gap:.1f} %")
        cells.append(f"{100 * np.mean(success[method]):.0f} % of {len(success[method])}" if success[method] else "—")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
