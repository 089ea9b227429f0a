"""``mbmeta quickstart``: the whole job on the Pendulum family, on a small budget, with a printed comparison.

For each method (``none``: plain ensemble; ``context``: learned context encoder; ``oracle``: the true task
parameters) it runs the model-based loop on the family's train split (random episodes, then fitting and MPC
collection, see ``mbmeta train``), then evaluates all of them with the same planner, tasks and seeds on the
held-out test split (masses and lengths outside the training range) and prints mean ± std returns. Everything runs
on CPU, offline; W&B runs are written under the output directory.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from mbmeta.commands import configure_threads
from mbmeta.control.settings import AgentSettings
from mbmeta.runs.settings import LoopSettings

# The budget: chosen to finish in a few minutes on 2 CPU cores while leaving each method a working model.
LOOP = {"iterations": 2, "initial_episodes": 16, "episodes_per_iteration": 8, "num_envs": 8, "epochs_per_iteration": 8}
MODEL = {"ensemble_size": 3, "hidden_sizes": (64, 64, 64), "learn_reward": False, "latent_dim": 8}
DATA = {"context_length": 10, "target_length": 5, "batch_size": 128, "samples_per_epoch": 8192, "pad_context": True}
AGENT = {"planner": "cem", "planner_options": {"population": 100, "elites": 10, "iterations": 3}, "horizon": 15}


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``mbmeta quickstart``."""
    parser = argparse.ArgumentParser(
        prog="mbmeta quickstart",
        description="Train none / context / oracle models on the Pendulum family's train tasks (small budget), "
        "evaluate them on its held-out test tasks and print the comparison. No GPU, account or network needed.",
    )
    parser.add_argument("--out", default="runs/quickstart", help="output directory (runs, results, plots)")
    parser.add_argument(
        "--methods", nargs="+", default=["none", "context", "oracle"], help="adaptation methods to compare"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of everything")
    parser.add_argument("--tasks", type=int, default=8, help="test tasks to evaluate on (of the 16 in the grid)")
    return parser


def run(argv: list[str]) -> int:
    """Train, evaluate, print; returns the exit code."""
    from pytorch_lightning.loggers import WandbLogger

    from mbmeta.commands.evaluate import print_summary
    from mbmeta.envs import get_family
    from mbmeta.evaluation.episodes import evaluate_returns, evaluation_tasks
    from mbmeta.evaluation.prediction import prediction_error, test_data
    from mbmeta.evaluation.reports import plot_prediction_error, write_results
    from mbmeta.runs.loop import run_training
    from mbmeta.training.checkpoint import load_module

    args = build_parser().parse_args(argv)
    configure_threads()
    console = Console()
    out = Path(args.out)
    family = get_family("pendulum")
    agent = AgentSettings(**AGENT)
    start = time.perf_counter()
    checkpoints = {}
    for method in args.methods:
        console.rule(f"[bold]training: {method}")
        run_dir = out / method
        logger = WandbLogger(project="mbmeta-quickstart", name=method, save_dir=str(out), group=out.name)
        loop = LoopSettings(family=family.name, run_dir=str(run_dir), seed=args.seed, **LOOP)
        checkpoints[method] = run_training(
            loop,
            model={**MODEL, "adaptation": method},
            data=DATA,
            agent=agent,
            trainer={"enable_progress_bar": False},
            logger=logger,
            log=console.print,
        )
        logger.experiment.finish()
    console.rule("[bold]evaluation on held-out test tasks")
    tasks = evaluation_tasks(family, "test", args.tasks)
    records, curves = [], {}
    data = test_data(family, tasks, seed=args.seed + 7919)
    for method, ckpt in checkpoints.items():
        module = load_module(ckpt)
        records += evaluate_returns(module, family, tasks, method=method, agent=agent, num_envs=8, seed=args.seed)
        curves[method] = prediction_error(module, data, context_length=agent.context_size, seed=args.seed)
    write_results(records, out / "results", extra={"prediction_error": curves, "family": family.name})
    plot_prediction_error(curves, out / "results" / "prediction_error.png", title="pendulum: test tasks")
    print_summary(records, console, title="Pendulum, held-out test tasks: episode return (mean ± std)")
    console.print("multi-step prediction error on test-task data (MSE in its obs-std units, horizons 1..10):")
    for method, curve in curves.items():
        console.print(f"  {method:>8}: " + " ".join(f"{v:.3g}" for v in curve))
    console.print(f"results in {out / 'results'}; W&B runs (offline) in {out / 'wandb'}")
    console.print(f"total time {time.perf_counter() - start:.0f} s")
    return 0
