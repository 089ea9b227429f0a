"""``mbmeta fit``: LightningCLI over the meta-dynamics module and the segment data module.

``mbmeta fit --config configs/pendulum_fit.yaml --data.buffer_path runs/pendulum/buffer.npz`` fits a model on a
saved buffer. The observation, action and task sizes are read from the buffer by the data module and linked into
the model at instantiation, so a config never states them. W&B logging is on by default and offline unless
``WANDB_MODE=online`` (see the README). Each run writes into its own directory (``runs/fit/<time>`` unless
``--trainer.default_root_dir`` says otherwise) because LightningCLI will not overwrite a saved ``config.yaml``.
"""

from __future__ import annotations

import time

from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from mbmeta.training.datamodule import MetaDataModule
from mbmeta.training.module import MetaDynamicsModule


class MetaCLI(LightningCLI):
    """LightningCLI with the data-to-model links of mbmeta."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:  # noqa: D102
        for name in ("obs_dim", "action_dim", "task_dim"):
            parser.link_arguments(f"data.{name}", f"model.{name}", apply_on="instantiate")


def trainer_defaults(root_dir: str) -> dict:
    """Trainer settings mbmeta applies unless the config overrides them: offline-by-default W&B, a run directory."""
    return {
        "default_root_dir": root_dir,
        "logger": {
            "class_path": "pytorch_lightning.loggers.WandbLogger",
            "init_args": {"project": "mbmeta", "save_dir": root_dir},
        },
        "max_epochs": 50,
    }


def run(argv: list[str]) -> int:
    """Run LightningCLI's ``fit`` with ``argv``; returns the exit code."""
    root_dir = f"runs/fit/{time.strftime('%Y%m%d-%H%M%S')}"
    MetaCLI(
        MetaDynamicsModule,
        MetaDataModule,
        args=["fit", *argv],
        trainer_defaults=trainer_defaults(root_dir),
        parser_kwargs={"fit": {"prog": "mbmeta fit"}},
    )
    return 0
