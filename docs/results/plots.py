"""The summary plots of docs/results.md, drawn from ``mbmeta evaluate`` / ``mbmeta transfer`` JSON outputs.

Usage::

    python docs/results/plots.py returns RESULTS_JSON OUT_PNG TITLE [episode_return|length]
    python docs/results/plots.py transfer TRANSFER_JSON OUT_PNG
    python docs/results/plots.py seeds OUT_PNG TITLE SEED=RESULTS_JSON [SEED=RESULTS_JSON ...]
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import numpy as np  # noqa: E402

LABELS = {"episode_return": "test return (mean ± std)", "length": "balance time (steps, mean ± std)"}


def returns(source: str, out: str, title: str, metric: str = "episode_return") -> None:
    """Bar chart of mean ± std of ``metric`` per method, in the order the methods appear."""
    with open(source) as f:
        episodes = json.load(f)["episodes"]
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
    with open(source) as f:
        result = json.load(f)
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


def seeds(out: str, title: str, *sources: str) -> None:
    """Mean test return per training seed (one dot per seed) and over seeds (bar), per method."""
    per_seed: dict[str, dict[str, list[float]]] = {}  # method -> seed -> episode returns
    for source in sources:
        seed, path = source.split("=", 1)
        with open(path) as f:
            for e in json.load(f)["episodes"]:
                per_seed.setdefault(e["method"], {}).setdefault(seed, []).append(e["episode_return"])
    order = ("none", "context", "gradient", "recurrent", "oracle")
    methods = [m for m in order if m in per_seed] + [m for m in per_seed if m not in order]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=110)
    for i, method in enumerate(methods):
        means = [float(np.mean(v)) for v in per_seed[method].values()]
        ax.bar(i, np.mean(means), alpha=0.5, color="tab:blue")
        ax.scatter([i] * len(means), means, color="black", s=12, zorder=3)
    ax.set_xticks(range(len(methods)), methods)
    ax.set_ylabel("test return: seed means (dots), their mean (bar)", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] not in ("returns", "transfer", "seeds"):
        raise SystemExit(__doc__)
    {"returns": returns, "transfer": transfer, "seeds": seeds}[sys.argv[1]](*sys.argv[2:])
