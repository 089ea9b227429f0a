"""``mbmeta transfer``: fine-tune a meta-trained model on a few episodes of one new task and compare.

    mbmeta transfer --ckpt runs/pendulum/model.ckpt --task '{"mass": 0.3, "length": 1.7}' --episodes 1 5 20

prints and writes (``transfer.json``) closed-loop returns on the task for zero-shot adaptation, the model
fine-tuned on 1, 5 and 20 episodes, and the same architecture trained from scratch on the same episodes, and logs
the table to W&B (``--wandb.*``; offline unless ``--wandb.mode online`` or ``WANDB_MODE=online``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from jsonargparse import ActionConfigFile
from rich.console import Console
from rich.table import Table

from mbmeta.commands import configure_threads, one_line_errors
from mbmeta.commands.agent_arguments import CommandParser, agent_settings
from mbmeta.commands.run_config import (
    SEGMENT_FIELDS,
    add_train_config_groups,
    parse_with_run_defaults,
    run_segment_settings,
)
from mbmeta.commands.wandb_options import add_wandb_arguments, sync_hint, wandb_settings
from mbmeta.data.atomic import atomic_write
from mbmeta.models.dynamics import FinetuneMode
from mbmeta.provenance import software_versions

# The `--trainer` keys transfer honours: where fine-tuning and from-scratch training run.
DEVICE_FIELDS = ("accelerator", "devices", "precision")


def build_parser() -> CommandParser:
    """Arguments of ``mbmeta transfer``."""
    parser = CommandParser(
        prog="mbmeta transfer",
        description="Fine-tune a meta-trained model on 1/5/20 episodes of a new task and compare zero-shot, "
        "fine-tuned and from-scratch models by closed-loop return on that task.",
        default_meta=False,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config file(s)")
    parser.add_argument("--ckpt", type=str, required=True, help="the meta-trained checkpoint")
    parser.add_argument("--task", type=dict[str, float], required=True, help='new task, e.g. {"mass": 0.3, ...}')
    parser.add_argument("--family", type=str | None, default=None, help="task family (default: from the run)")
    parser.add_argument("--episodes", type=int, nargs="+", default=[1, 5, 20], help="new-task episode counts")
    parser.add_argument(
        "--mode", type=FinetuneMode, default="all", help="what fine-tuning trains: all, frozen_encoder or last_layer"
    )
    parser.add_argument("--epochs", type=int, default=20, help="fine-tuning / from-scratch epochs")
    parser.add_argument("--eval_episodes", type=int, default=3, help="evaluation episodes per model")
    parser.add_argument("--seed", type=int, default=0, help="seeds data, training and evaluation")
    parser.add_argument("--out", type=str, default="results/transfer", help="output directory")
    parser.add_agent_arguments()
    add_wandb_arguments(parser)
    add_train_config_groups(
        parser,
        {
            "data": f"its {', '.join(SEGMENT_FIELDS)} override the run's (default: the run's config.json)",
            "trainer": f"its {', '.join(DEVICE_FIELDS)} say where fine-tuning runs (default: CPU)",
        },
    )
    return parser


@one_line_errors("transfer")
def run(argv: list[str]) -> int:
    """Parse ``argv``, run the transfer comparison, print and write it; returns the exit code."""
    from mbmeta.commands.evaluate import describe_agent, family_of_checkpoint
    from mbmeta.envs import get_family
    from mbmeta.evaluation.transfer import transfer_study
    from mbmeta.training.checkpoint import load_module

    cfg, agent_source = parse_with_run_defaults(build_parser(), argv)
    configure_threads()
    family = get_family(cfg.family or family_of_checkpoint(cfg.ckpt))
    task = family.validate(cfg.task)
    console = Console()
    agent = agent_settings(cfg)
    console.print(describe_agent(agent, agent_source))
    # Fine-tune on the segments the model was trained on: the run's context/target lengths and padding, unless a
    # `mbmeta train` config given with --config says otherwise. Sampling sizes stay transfer's own (few data).
    given = {k: v for k, v in (cfg.data or {}).items() if k in SEGMENT_FIELDS}
    data = {**run_segment_settings(cfg.ckpt), **given}
    # Where to fit (e.g. --trainer '{"accelerator": "gpu"}'); the rest of the trainer is transfer's own.
    trainer = {k: v for k, v in (cfg.trainer or {}).items() if k in DEVICE_FIELDS}
    console.print(f"fine-tuning segments: {data or 'the data module defaults'}")
    rows = transfer_study(
        load_module(cfg.ckpt),
        family,
        task,
        episode_counts=cfg.episodes,
        mode=cfg.mode,
        epochs=cfg.epochs,
        eval_episodes=cfg.eval_episodes,
        agent=agent,
        data=data,
        trainer=trainer,
        seed=cfg.seed,
        log=console.print,
    )
    table = Table(title=f"transfer to {family.name} {task.as_dict()} (fine-tune mode: {cfg.mode})")
    columns = ["method", "episodes", "return (mean ± std)", "length", "one-step error", "error at h10"]
    with_success = rows[0].success_rate is not None
    if with_success:
        columns.insert(4, "success")
    for column in columns:
        table.add_column(column, justify="right")
    for r in rows:
        cells = [r.method, str(r.episodes), f"{r.mean:.1f} ± {r.std:.1f}", f"{r.mean_length:.1f}"]
        cells += [f"{r.success_rate:.0%}"] if with_success else []
        table.add_row(*cells, f"{r.error_h1:.3g}", f"{r.error_hmax:.3g}")
    console.print(table)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "family": family.name,
        "task": task.as_dict(),
        "mode": cfg.mode,
        "agent": agent.as_config(),
        "data": data,
        "rows": [asdict(r) for r in rows],
        "software": software_versions(),  # what the numbers were measured with (mbmeta.provenance)
    }
    text = json.dumps(payload, indent=2)
    atomic_write(out / "transfer.json", lambda f: f.write(text.encode()))
    console.print(f"written {out / 'transfer.json'}")
    _log_to_wandb(out, payload, rows, wandb_settings(cfg), console)
    return 0


def _log_to_wandb(out: Path, payload: dict, rows: list, wandb, console: Console) -> None:
    """The comparison as a W&B table, with each row's mean return as a figure."""
    from mbmeta.evaluation.reports import log_table_to_wandb

    columns = [
        "method",
        "episodes",
        "return_mean",
        "return_std",
        "length_mean",
        "success_rate",
        "error_h1",
        "error_hmax",
    ]
    table = [
        [r.method, r.episodes, r.mean, r.std, r.mean_length, r.success_rate, r.error_h1, r.error_hmax] for r in rows
    ]
    metrics = {f"{r.method}_{r.episodes}/return_mean": r.mean for r in rows}
    metrics |= {f"{r.method}_{r.episodes}/length_mean": r.mean_length for r in rows}
    config = {k: v for k, v in payload.items() if k != "rows"}
    log_table_to_wandb(
        out, job_type="transfer", columns=columns, rows=table, config=config, metrics=metrics, init=wandb.init_kwargs()
    )
    hint = sync_hint(out, wandb)
    if hint:
        console.print(hint, markup=False)
