"""How far the task codes of the final `context` / `recurrent` models leave their training range on the test tasks.

For each model: the per-dimension range of z on its own training data (as `agent.bound_latent` measures it), then z
at every step of random-action episodes of the 16 test tasks (the episodes `mbmeta evaluate` measures prediction
error on: seed 0 + 7919), and per test restitution value the fraction of steps with any dimension outside the range
and the largest excess. Needs each run's buffer.npz (kept locally, not in git):

    python experiments/juggler_servo_comparison/diagnostics/code_range.py > code_range.md   # then move it here
"""

import argparse
from pathlib import Path

import torch

from mbmeta.control.latent_range import context_windows, step_codes
from mbmeta.envs import get_family
from mbmeta.evaluation.episodes import evaluation_tasks
from mbmeta.evaluation.prediction import test_data
from mbmeta.runs.training_data import training_latent_range
from mbmeta.training.checkpoint import load_module

ROOT = Path(__file__).resolve().parents[1]
RUNS = ("context-seed0", "context-seed1", "recurrent-seed0")
K = 10


def main(argv: list[str] | None = None) -> None:
    """Print the table (markdown)."""
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    torch.set_num_threads(1)
    family = get_family("juggler_balance_servo")
    tasks = evaluation_tasks(family, "test", 16, seed=0, design="balanced")
    data = test_data(family, tasks, seed=7919, min_length=25)
    _, _, episode = context_windows(data, K)
    restitution = data.tasks[episode, data.task_names.index("restitution_scale")]
    print("| run | test restitution | steps | steps with a dimension out of range | largest excess |")
    print("|---|---:|---:|---:|---:|")
    for run in RUNS:
        ckpt = ROOT / "runs" / run / "model.ckpt"
        model = load_module(ckpt).dynamics
        bounds = training_latent_range(ckpt, model, K)
        z = step_codes(model, data, K)  # [N, Z]: each step's code, as the agent adapts
        excess = torch.maximum(z - bounds.high, bounds.low - z).clamp(min=0)  # [N, Z]
        for value in sorted(set(restitution.tolist())):
            chosen = torch.as_tensor(restitution == value)
            out = (excess[chosen] > 0).any(1).float().mean().item()
            largest = excess[chosen].max().item()
            print(f"| {run} | {value:g} | {int(chosen.sum())} | {100 * out:.1f} % | {largest:.3f} |")


if __name__ == "__main__":
    main()
