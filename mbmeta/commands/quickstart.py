"""``mbmeta quickstart``: the whole job on the Pendulum family, on a small budget, with a printed comparison.

For each method (``none``: plain ensemble; ``context``: learned context encoder; ``oracle``: the true task
parameters) it runs the model-based loop on the family's train split (random episodes, then fitting and MPC
collection, see ``mbmeta train``), then evaluates all of them with the same planner, tasks and seeds on the
held-out test split (masses and lengths outside the training range) and prints mean ± std returns. Everything runs
on CPU, offline; W&B runs are written under the output directory. The budget is a ``mbmeta train`` config shipped
with the package (:data:`BUDGET`, ``mbmeta/configs/quickstart.yaml``).
"""

from __future__ import annotations

import time
from importlib.resources import files
from pathlib import Path

from jsonargparse import Namespace
from rich.console import Console

from mbmeta.commands import configure_threads, one_line_errors
from mbmeta.commands.agent_arguments import CommandParser
from mbmeta.commands.wandb_options import add_wandb_arguments, sync_hint, wandb_settings
from mbmeta.runs.settings import LoopSettings

BUDGET = files("mbmeta") / "configs" / "quickstart.yaml"
"""The budget: loop, model, data, agent and trainer groups of a ``mbmeta train`` config."""


def load_budget(path: str | Path | None = None) -> Namespace:
    """The budget config (default :data:`BUDGET`), parsed and checked as ``mbmeta train`` parses its configs."""
    from mbmeta.commands.train import build_parser

    return build_parser().parse_args(["--config", str(path if path is not None else BUDGET)])


def build_parser() -> CommandParser:
    """Arguments of ``mbmeta quickstart``."""
    parser = CommandParser(
        prog="mbmeta quickstart",
        description="Train none / context / oracle models on the Pendulum family's train tasks (small budget), "
        "evaluate them on its held-out test tasks and print the comparison. No GPU, account or network needed.",
        default_meta=False,
    )
    parser.add_argument("--out", type=str, default="runs/quickstart", help="output directory (runs, results, plots)")
    parser.add_argument(
        "--methods", type=str, nargs="+", default=["none", "context", "oracle"], help="adaptation methods to compare"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of everything")
    parser.add_argument("--tasks", type=int, default=8, help="test tasks to evaluate on (of the 16 in the grid)")
    parser.add_argument(
        "--config",
        type=str | None,
        default=None,
        help="the budget: a `mbmeta train` config (its loop.family, loop.run_dir, loop.seed and model.adaptation "
        "are quickstart's own); default: the one shipped with mbmeta (mbmeta/configs/quickstart.yaml)",
    )
    add_wandb_arguments(parser)
    return parser


@one_line_errors("quickstart")
def run(argv: list[str]) -> int:
    """Train, evaluate, print; returns the exit code."""
    from pytorch_lightning.loggers import WandbLogger

    from mbmeta.commands.agent_arguments import agent_settings
    from mbmeta.commands.evaluate import print_summary
    from mbmeta.envs import get_family
    from mbmeta.evaluation.episodes import evaluate_returns, evaluation_tasks
    from mbmeta.evaluation.prediction import prediction_error, test_data
    from mbmeta.evaluation.reports import plot_prediction_error, write_results
    from mbmeta.runs.loop import run_training
    from mbmeta.training.checkpoint import load_module

    args = build_parser().parse_args(argv)
    budget = load_budget(args.config)
    configure_threads()
    wandb = wandb_settings(args)
    console = Console()
    out = Path(args.out)
    family = get_family("pendulum")
    agent = agent_settings(budget)
    start = time.perf_counter()
    checkpoints = {}
    for method in args.methods:
        console.rule(f"[bold]training: {method}")
        run_dir = out / method
        name = f"{wandb.name}-{method}" if wandb.name else method
        options = wandb.init_kwargs(project="mbmeta-quickstart", group=out.resolve().name)
        logger = WandbLogger(save_dir=str(out), **{**options, "name": name})
        loop = LoopSettings(**{**vars(budget.loop), "family": family.name, "run_dir": str(run_dir), "seed": args.seed})
        checkpoints[method] = run_training(
            loop,
            model={**vars(budget.model), "adaptation": method},
            data=dict(vars(budget.data)),
            agent=agent,
            trainer=dict(budget.trainer),
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
        curves[method] = prediction_error(module, data, context_length=agent.context_length, seed=args.seed)
    write_results(records, out / "results", extra={"prediction_error": curves, "family": family.name})
    plot_prediction_error(curves, out / "results" / "prediction_error.png", title="pendulum: test tasks")
    print_summary(records, console, title="Pendulum, held-out test tasks: episode return (mean ± std)")
    console.print("multi-step prediction error on test-task data (MSE in its obs-std units, horizons 1..10):")
    for method, curve in curves.items():
        console.print(f"  {method:>8}: " + " ".join(f"{v:.3g}" for v in curve))
    console.print(f"results in {out / 'results'}; learning curves in {out}/<method>/learning_curve.png")
    hint = sync_hint(out, wandb)
    if hint:
        console.print(hint, markup=False)
    console.print(f"total time {time.perf_counter() - start:.0f} s")
    return 0
