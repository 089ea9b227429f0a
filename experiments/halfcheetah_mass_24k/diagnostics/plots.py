"""Summary plots of an experiment, drawn from ``mbmeta evaluate`` / ``mbmeta transfer`` / ``mbmeta sweep`` outputs.

Usage::

    python experiments/halfcheetah_mass_24k/diagnostics/plots.py returns OUT_PNG TITLE RESULTS_JSON [...] [--metric M]
    python experiments/halfcheetah_mass_24k/diagnostics/plots.py transfer TRANSFER_JSON OUT_PNG
    python experiments/halfcheetah_mass_24k/diagnostics/plots.py seeds EXPERIMENT_DIR OUT_PNG [--metric M]

``returns``: mean ± std of a metric per method over the episodes of the given results files (e.g. one training
seed's evaluations); ``transfer``: return against new-task episodes for fine-tuned and from-scratch models;
``seeds``: each training seed's mean (dots) and their mean (bar) per method, from the experiment's merged
``results/summary.json`` (drew ``results/figures/halfcheetah_mass_v4/returns_seeds.png`` from the same numbers).
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import numpy as np  # noqa: E402

LABELS = {"episode_return": "test return (mean ± std)", "length": "episode length (steps, mean ± std)"}


def returns(out: str, title: str, sources: list[str], metric: str = "episode_return") -> None:
    """Bar chart of mean ± std of ``metric`` per method, in the order the methods appear."""
    episodes = [e for source in sources for e in json.loads(Path(source).read_text())["episodes"]]
    methods = list(dict.fromkeys(e["method"] for e in episodes))
    values = [np.array([e[metric] for e in episodes if e["method"] == m], dtype=float) for m in methods]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=110)
    ax.bar(methods, [v.mean() for v in values], yerr=[v.std() for v in values], capsize=4, alpha=0.8)
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out)


def transfer(source: str, out: str) -> None:
    """Return against new-task episodes for fine-tuned and from-scratch models, with the zero-shot return."""
    result = json.loads(Path(source).read_text())
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=110)
    for name, colour in (("finetune", "tab:orange"), ("scratch", "tab:grey")):
        rows = [r for r in result["rows"] if r["method"] == name]
        means = [np.mean(r["returns"]) for r in rows]
        stds = [np.std(r["returns"]) for r in rows]
        ax.errorbar([r["episodes"] for r in rows], means, yerr=stds, marker="o", capsize=3, label=name, color=colour)
    zero = next(r for r in result["rows"] if r["method"] == "zero-shot")
    ax.axhline(np.mean(zero["returns"]), ls="--", color="tab:blue", label="zero-shot")
    counts = sorted({r["episodes"] for r in result["rows"] if r["episodes"] > 0})
    ax.set_xscale("log")
    ax.set_xticks(counts, [str(c) for c in counts])
    ax.set_xlabel("new-task episodes (random actions)")
    ax.set_ylabel("return (mean ± std)")
    ax.set_title(f"{result['family']} {result['task']}: transfer", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)


def seeds(experiment: str, out: str, metric: str = "episode_return") -> None:
    """Each training seed's mean (dots) and the mean over seeds (bar) per method, from ``results/summary.json``."""
    summary = json.loads((Path(experiment) / "results" / "summary.json").read_text())
    methods = summary["metrics"][metric]["methods"]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=110)
    names = [m for m, conditions in methods.items() if conditions.get("overall", {}).get("n")]
    for i, method in enumerate(names):
        overall = methods[method]["overall"]
        values = list(overall["per_seed"].values())
        ax.bar(i, overall["mean"], alpha=0.5, color="tab:blue")
        ax.scatter([i] * len(values), values, color="black", s=12, zorder=3)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel(f"{metric}: seed means (dots), their mean (bar)", fontsize=8)
    ax.set_title(f"{summary['experiment']}: {metric} per training seed", fontsize=9)
    fig.tight_layout()
    fig.savefig(out)


def main(argv: list[str] | None = None) -> None:
    """Parse the subcommand and draw."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="plot", required=True)
    p = sub.add_parser("returns", help="mean ± std per method over results files")
    p.add_argument("out")
    p.add_argument("title")
    p.add_argument("sources", nargs="+")
    p.add_argument("--metric", default="episode_return")
    p = sub.add_parser("transfer", help="a mbmeta transfer output")
    p.add_argument("source")
    p.add_argument("out")
    p = sub.add_parser("seeds", help="per-seed means of an experiment's merged results")
    p.add_argument("experiment")
    p.add_argument("out")
    p.add_argument("--metric", default="episode_return")
    args = parser.parse_args(argv)
    if args.plot == "returns":
        returns(args.out, args.title, args.sources, args.metric)
    elif args.plot == "transfer":
        transfer(args.source, args.out)
    else:
        seeds(args.experiment, args.out, args.metric)


if __name__ == "__main__":
    main()
