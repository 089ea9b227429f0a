"""``mbmeta fit``: LightningCLI over the meta-dynamics module and the segment data module.

``mbmeta fit --config configs/pendulum_fit.yaml --data.buffer_path runs/pendulum/buffer.npz`` fits a model on a
saved buffer. The observation, action and task sizes are read from the buffer by the data module and linked into
the model at instantiation, so a config never states them. Each run writes into its own directory
(``runs/fit/<time>`` unless ``--trainer.default_root_dir`` says otherwise) because LightningCLI will not overwrite a
saved ``config.yaml``::

    runs/fit/<time>/config.yaml             the complete settings of the run
    runs/fit/<time>/checkpoints/last.ckpt   the model after the last epoch (printed at the end)
    runs/fit/<time>/wandb/                  the W&B run (offline unless --wandb.mode online or WANDB_MODE=online)

``--wandb.project/entity/mode/tags/group/name`` set the W&B run (named and grouped by the run directory unless
given); online, the checkpoint is logged as a W&B model artifact. ``--ckpt_path last`` with the same
``--trainer.default_root_dir`` resumes from ``last.ckpt``.

Fitting scales with Lightning's own strategies, e.g. ``--trainer.strategy ddp --trainer.devices 2`` (one process per
device; processes Lightning relaunches inherit ``MBMETA_FIT_ROOT_DIR`` so that all write into one run directory),
``--trainer.num_nodes N`` under torchrun or SLURM (see ``docs/long_jobs.md``). A
:class:`~mbmeta.training.callbacks.DivergenceCallback` is always on: a NaN/inf loss stops fitting with a clear error
before a broken checkpoint is saved.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

from pytorch_lightning import Trainer
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.loggers import WandbLogger

from mbmeta.commands import configure_threads, one_line_errors
from mbmeta.commands.parsing import ShortErrors
from mbmeta.commands.wandb_options import WandbSettings, sync_hint
from mbmeta.models.checkpoint import load_checkpoint
from mbmeta.training.callbacks import DivergenceCallback
from mbmeta.training.datamodule import MetaDataModule
from mbmeta.training.fitting import TRAINER_DEFAULTS
from mbmeta.training.module import MetaDynamicsModule

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last"  # ModelCheckpoint's file name (without .ckpt); "--ckpt_path last" finds it


class ShortLightningParser(ShortErrors, LightningArgumentParser):
    """LightningCLI's parser with short parse errors (:class:`~mbmeta.commands.parsing.ShortErrors`)."""


class MetaCLI(LightningCLI):
    """LightningCLI with mbmeta's data-to-model links, a ``wandb`` group and a stable ``checkpoints/last.ckpt``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parser_class", ShortLightningParser)
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:  # noqa: D102
        for name in ("obs_dim", "action_dim", "task_dim"):
            parser.link_arguments(f"data.{name}", f"model.{name}", apply_on="instantiate")
        parser.add_class_arguments(WandbSettings, "wandb", instantiate=False)

    @property
    def root_dir(self) -> Path:
        """The run directory (``trainer.default_root_dir``; the working directory if none is set)."""
        return Path(self._get(self.config, "trainer").get("default_root_dir") or ".")

    @property
    def wandb(self) -> WandbSettings:
        """The ``--wandb.*`` settings."""
        group = self._get(self.config, "wandb")
        return WandbSettings(**(group.as_dict() if group is not None else {}))

    def before_instantiate_classes(self) -> None:
        """Apply the ``--wandb.*`` settings to a W&B logger: named and grouped by the run directory by default."""
        logger = self._get(self.config, "trainer").get("logger")
        if not (hasattr(logger, "get") and str(logger.get("class_path", "")).endswith("WandbLogger")):
            return  # another logger (or none) was configured: it is the user's
        init_args = logger.init_args
        for key in ("name", "group"):  # --trainer.logger.init_args.* keep precedence over these defaults
            if init_args.get(key) is None:
                init_args[key] = self.root_dir.name
        for key, value in self.wandb.init_kwargs().items():
            init_args[key] = value
        if self.wandb.log_model and self.wandb.resolved_mode() == "online":
            init_args["log_model"] = True  # Lightning logs the checkpoint as a model artifact when fitting ends

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The trainer, with a checkpoint callback that keeps ``<run dir>/checkpoints/last.ckpt`` current."""
        trainer_config = self._get(self.config_init, "trainer", default={})
        callbacks: list[Callback] = list(trainer_config.get("callbacks") or [])
        if trainer_config.get("enable_checkpointing", True) is not False and not any(
            isinstance(c, ModelCheckpoint) for c in callbacks
        ):
            kwargs.setdefault("callbacks", [*callbacks, last_checkpoint(self.root_dir)])
        return super().instantiate_trainer(**kwargs)


def last_checkpoint(root_dir: str | Path) -> ModelCheckpoint:
    """A checkpoint callback that overwrites ``<root_dir>/checkpoints/last.ckpt`` after every epoch.

    One file under one name: ``save_last=True`` would keep an ``epoch=...-step=...ckpt`` copy beside it, twice the
    disk for the same weights.
    """
    return ModelCheckpoint(
        dirpath=Path(root_dir) / CHECKPOINT_DIR,
        filename=LAST_CHECKPOINT,
        save_top_k=1,
        enable_version_counter=False,
    )


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
    with warnings.catch_warnings():
        # mbmeta hands LightningCLI the command's own arguments on purpose; its warning about it is noise here
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        cli = MetaCLI(
            MetaDynamicsModule,
            MetaDataModule,
            args=["fit", *argv],
            trainer_defaults=trainer_defaults(root_dir),
            parser_kwargs={"prog": "mbmeta", "fit": {"prog": "mbmeta fit"}},
            # a resumed fit (--ckpt_path) continues in its run directory: its config.yaml is rewritten, not refused
            save_config_kwargs={"overwrite": resume_from is not None},
        )
    _report(cli)
    logger = getattr(getattr(cli, "trainer", None), "logger", None)
    if isinstance(logger, WandbLogger):
        # Close the W&B run: a later W&B logger in the same process (a `mbmeta train` called from Python after this
        # fit) would otherwise reuse this run and write into this fit's directory.
        logger.experiment.finish()
    return 0


def _report(cli: MetaCLI) -> None:
    """Print where the checkpoint and the config are, and how to use them (rank 0 only)."""
    trainer = cli.trainer
    if not trainer.is_global_zero:
        return
    callback = trainer.checkpoint_callback
    checkpoint = getattr(callback, "last_model_path", "") or getattr(callback, "best_model_path", "")
    if checkpoint:
        print(f"checkpoint: {checkpoint}", flush=True)
        print(f"config: {cli.root_dir / 'config.yaml'}", flush=True)
        print(f"evaluate it: mbmeta evaluate --ckpt {checkpoint} --out {cli.root_dir / 'evaluation'}", flush=True)
    hint = sync_hint(cli.root_dir, cli.wandb) if isinstance(trainer.logger, WandbLogger) else None
    if hint:
        print(hint, flush=True)


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
