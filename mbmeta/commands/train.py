"""``mbmeta train``: the model-based meta-RL loop across a family's training tasks (see :mod:`mbmeta.training.loop`).

Configured by YAML files and command-line overrides (jsonargparse), e.g.::

    mbmeta train --config configs/pendulum.yaml --loop.run_dir runs/pendulum-context --model.adaptation context

Running the same command again resumes the run in ``loop.run_dir``.
"""

from __future__ import annotations

from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser

from mbmeta.training.datamodule import MetaDataModule
from mbmeta.training.module import MetaDynamicsModule
from mbmeta.training.settings import AgentSettings, LoopSettings

SIZES = {"obs_dim", "action_dim", "task_dim"}  # read from the data, never configured


def build_parser() -> ArgumentParser:
    """Arguments of ``mbmeta train``: loop, model, data, agent and trainer groups."""
    parser = ArgumentParser(
        prog="mbmeta train",
        description="Collect across training tasks, meta-train the dynamics model, collect with the adapting MPC "
        "agent, repeat. Re-running the same command resumes the run.",
        default_meta=False,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config file(s); later ones override")
    parser.add_class_arguments(LoopSettings, "loop")
    parser.add_class_arguments(MetaDynamicsModule, "model", skip=SIZES)
    parser.add_class_arguments(MetaDataModule, "data", skip={"buffer_path"})
    parser.add_class_arguments(AgentSettings, "agent")
    parser.add_argument(
        "--trainer", type=dict[str, Any], default={}, help="extra pytorch_lightning.Trainer arguments (a mapping)"
    )
    return parser


def run(argv: list[str]) -> int:
    """Parse ``argv`` and run the loop; returns the exit code."""
    from mbmeta.training.loop import run_training

    parser = build_parser()
    cfg = parser.parse_args(argv)
    ckpt = run_training(
        LoopSettings(**vars(cfg.loop)),
        model=dict(vars(cfg.model)),
        data=dict(vars(cfg.data)),
        agent=AgentSettings(**vars(cfg.agent)),
        trainer=dict(cfg.trainer),
    )
    print(f"checkpoint: {ckpt}")
    return 0
