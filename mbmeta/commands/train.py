"""``mbmeta train``: the model-based meta-RL loop across a family's training tasks (see :mod:`mbmeta.runs.loop`).

Configured by YAML files and command-line overrides (jsonargparse), e.g.::

    mbmeta train --config configs/pendulum.yaml --loop.run_dir runs/pendulum-context --model.adaptation context \
        --agent.planner icem --agent.planner.population 300

Running the same command again resumes the run in ``loop.run_dir``. K is ``data.context_length`` (what the model
is trained on) and ``agent.context_length`` (what the agent adapts on): they must be equal. Trainer options go
either dotted (``--trainer.accelerator gpu --trainer.gradient_clip_val 1.0``, as in ``mbmeta fit``) or as one
mapping (``--trainer '{"accelerator": "gpu"}'``); both merge, later ones win. ``--wandb.*`` names the W&B run.
"""

from __future__ import annotations

from typing import Any

from jsonargparse import ActionConfigFile

from mbmeta.commands import configure_threads, one_line_errors
from mbmeta.commands.agent_arguments import CommandParser, agent_settings
from mbmeta.commands.wandb_options import add_wandb_arguments, sync_hint, wandb_settings
from mbmeta.runs.settings import LoopSettings
from mbmeta.training.datamodule import MetaDataModule
from mbmeta.training.module import MetaDynamicsModule

SIZES = {"obs_dim", "action_dim", "task_dim"}  # read from the data, never configured
# loop.seed seeds everything (weights and batches too, per iteration); separate model/data seeds would silently
# override it and make `--loop.seed` change only the data.
SEEDS = {"seed"}


def build_parser() -> CommandParser:
    """Arguments of ``mbmeta train``: loop, model, data, agent and trainer groups."""
    parser = CommandParser(
        prog="mbmeta train",
        description="Collect across training tasks, meta-train the dynamics model, collect with the adapting MPC "
        "agent, repeat. Re-running the same command resumes the run.",
        default_meta=False,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config file(s); later ones override")
    parser.add_class_arguments(LoopSettings, "loop")
    parser.add_class_arguments(MetaDynamicsModule, "model", skip=SIZES | SEEDS)
    parser.add_class_arguments(MetaDataModule, "data", skip={"buffer_path"} | SEEDS)
    parser.add_agent_arguments()
    parser.add_argument(
        "--trainer",
        type=dict[str, Any],
        default={},
        help="extra pytorch_lightning.Trainer arguments, one at a time (--trainer.accelerator gpu "
        '--trainer.gradient_clip_val 1.0) or as a mapping (\'{"accelerator": "gpu", "devices": 2, '
        '"strategy": "ddp_spawn"}\'); max_epochs is --loop.epochs_per_iteration, the logger is --wandb.*',
    )
    parser.add_argument(
        "--env_kwargs",
        type=dict[str, Any],
        default={},
        help="extra gymnasium.make arguments for the family's environments, e.g. '{\"max_episode_steps\": 100}'",
    )
    add_wandb_arguments(parser)
    return parser


@one_line_errors("train")
def run(argv: list[str]) -> int:
    """Parse ``argv`` and run the loop; returns the exit code (1 with a one-line message for a known error)."""
    from mbmeta.runs.loop import run_training

    parser = build_parser()
    cfg = parser.parse_args(argv)
    configure_threads()
    wandb = wandb_settings(cfg)
    ckpt = run_training(
        LoopSettings(**vars(cfg.loop)),
        model=dict(vars(cfg.model)),
        data=dict(vars(cfg.data)),
        agent=agent_settings(cfg),
        trainer=dict(cfg.trainer),
        env_kwargs=dict(cfg.env_kwargs),
        log=_log,
        wandb={**wandb.init_kwargs(), "log_model": wandb.log_model},
    )
    print(f"checkpoint: {ckpt}", flush=True)
    print(f"learning curve: {ckpt.parent / 'learning_curve.png'}", flush=True)
    hint = sync_hint(cfg.loop.run_dir, wandb)
    if hint:
        print(hint, flush=True)
    return 0


def _log(line: str) -> None:
    # Flushed at once: progress must reach a log file or pipe even if the job is killed a moment later.
    print(line, flush=True)
