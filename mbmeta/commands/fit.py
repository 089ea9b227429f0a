"""``mbmeta fit``: LightningCLI over the meta-dynamics module and the segment data module.

``mbmeta fit --config configs/pendulum_fit.yaml --data.buffer_path runs/pendulum/buffer.npz`` fits a model on a
saved buffer. The observation, action and task sizes are read from the buffer by the data module and linked into
the model at instantiation, so a config never states them. W&B logging is on by default and offline unless
``WANDB_MODE=online`` (see the README). Each run writes into its own directory (``runs/fit/<time>`` unless
``--trainer.default_root_dir`` says otherwise) because LightningCLI will not overwrite a saved ``config.yaml``.

Fitting scales with Lightning's own strategies, e.g. ``--trainer.strategy ddp --trainer.devices 2`` (one process per
device; processes Lightning relaunches inherit ``MBMETA_FIT_ROOT_DIR`` so that all write into one run directory),
``--trainer.num_nodes N`` under torchrun or SLURM (see ``docs/long_jobs.md``). A
:class:`~mbmeta.training.callbacks.DivergenceCallback` is always on: a NaN/inf loss stops fitting with a clear error
before a broken checkpoint is saved.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from mbmeta.commands import configure_threads, one_line_errors
from mbmeta.models.checkpoint import load_checkpoint
from mbmeta.training.callbacks import DivergenceCallback
from mbmeta.training.datamodule import MetaDataModule
from mbmeta.training.fitting import TRAINER_DEFAULTS
from mbmeta.training.module import MetaDynamicsModule


class MetaCLI(LightningCLI):
    """LightningCLI with the data-to-model links of mbmeta."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:  # noqa: D102
        for name in ("obs_dim", "action_dim", "task_dim"):
            parser.link_arguments(f"data.{name}", f"model.{name}", apply_on="instantiate")


def trainer_defaults(root_dir: str) -> dict:
    """Trainer settings mbmeta applies unless the config overrides them: offline-by-default W&B, a run directory.

    They start from :data:`mbmeta.training.fitting.TRAINER_DEFAULTS` (what every other mbmeta fit uses), except that
    Lightning's own checkpointing and model summary stay on: here the checkpoint is the command's output.
    """
    shared = {k: v for k, v in TRAINER_DEFAULTS.items() if k not in ("enable_checkpointing", "enable_model_summary")}
    return {
        **shared,
        "default_root_dir": root_dir,
        "logger": {
            "class_path": "pytorch_lightning.loggers.WandbLogger",
            "init_args": {"project": "mbmeta", "save_dir": root_dir},
        },
        "max_epochs": 50,
        "callbacks": [DivergenceCallback()],  # persistent: LightningCLI appends it to any configured callbacks
    }


@one_line_errors("fit")
def run(argv: list[str]) -> int:
    """Run LightningCLI's ``fit`` with ``argv``; returns the exit code."""
    # Lightning's DDP relaunches this command once per extra device, possibly a second later: the environment
    # variable (inherited by the relaunched processes) keeps every rank in the directory rank 0 chose.
    resume_from = _given_value(argv, "--ckpt_path")
    if resume_from is not None and Path(resume_from).suffix == ".ckpt":  # not "last"/"best": a file to read safely
        load_checkpoint(resume_from)  # a missing, damaged or unsafe file fails here in one line, naming it
    configure_threads()
    root_dir = _given_root_dir(argv) or os.environ.setdefault(
        "MBMETA_FIT_ROOT_DIR", f"runs/fit/{time.strftime('%Y%m%d-%H%M%S')}"
    )
    MetaCLI(
        MetaDynamicsModule,
        MetaDataModule,
        args=["fit", *argv],
        trainer_defaults=trainer_defaults(root_dir),
        parser_kwargs={"fit": {"prog": "mbmeta fit"}},
    )
    return 0


def _given_root_dir(argv: list[str]) -> str | None:
    """The ``--trainer.default_root_dir`` of the command line, so logs and checkpoints go there too."""
    return _given_value(argv, "--trainer.default_root_dir")


def _given_value(argv: list[str], flag: str) -> str | None:
    """The value of ``flag`` on the command line (``--flag value`` or ``--flag=value``), or None."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(f"{flag}="):
            return arg.split("=", 1)[1]
    return None
