"""Fitting a :class:`~mbmeta.training.module.MetaDynamicsModule` on an episode buffer.

:func:`make_trainer` is the one ``pl.Trainer`` factory of every mbmeta fit (the model-based loop and fine-tuning);
``mbmeta fit`` starts from the same :data:`TRAINER_DEFAULTS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar, RichProgressBar
from pytorch_lightning.loggers import Logger

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.training.callbacks import DivergenceCallback
from mbmeta.training.datamodule import MetaDataModule
from mbmeta.training.module import MetaDynamicsModule

TRAINER_DEFAULTS: dict[str, Any] = {
    "accelerator": "cpu",
    "devices": 1,
    "enable_model_summary": False,
    "enable_checkpointing": False,
    "log_every_n_steps": 10,
}
"""``pl.Trainer`` settings of every mbmeta fit unless overridden: one CPU device (move with ``accelerator``), no
model summary (printed once per loop iteration otherwise), checkpoints written by mbmeta itself (atomically)."""


def make_trainer(
    *, max_epochs: int, logger: Logger | bool = False, root_dir: str | Path | None = None, **overrides: Any
) -> pl.Trainer:
    """A ``pl.Trainer`` with :data:`TRAINER_DEFAULTS`, a divergence guard and (unless disabled) a progress bar.

    Args:
        max_epochs: epochs to fit.
        logger: a Lightning logger, or False.
        root_dir: ``default_root_dir`` (where Lightning writes anything of its own).
        **overrides: further ``pl.Trainer`` arguments, overriding the defaults (``callbacks`` are added to the
            divergence guard, not replacing it).
    """
    options = {**TRAINER_DEFAULTS, **overrides}
    callbacks = list(options.pop("callbacks", None) or [])
    if options.get("enable_progress_bar", True) and not any(isinstance(c, ProgressBar) for c in callbacks):
        callbacks.append(RichProgressBar(leave=False))
    if not any(isinstance(c, DivergenceCallback) for c in callbacks):
        callbacks.append(DivergenceCallback())
    if root_dir is not None:
        options["default_root_dir"] = str(root_dir)
    return pl.Trainer(max_epochs=max_epochs, logger=logger, callbacks=callbacks, **options)


def fit_model(
    module: MetaDynamicsModule | None,
    buffer: EpisodeBuffer,
    *,
    model: dict[str, Any],
    data: dict[str, Any],
    trainer: dict[str, Any],
    max_epochs: int,
    logger: Logger | bool,
    seed: int,
    root_dir: Path,
) -> tuple[MetaDynamicsModule, pl.Trainer]:
    """Fit (or continue fitting) the model on the buffer; returns the module and the trainer that fitted it.

    The normaliser is refitted on the whole current buffer every time: the data distribution moves as the agent
    improves, and the warm-started weights adapt to the new scaling within the first epoch. A
    :class:`~mbmeta.training.callbacks.DivergenceCallback` stops fitting with a
    :class:`~mbmeta.training.callbacks.DivergenceError` if the loss or the weights become NaN/inf.

    Args:
        module: the module to continue fitting, or None to build one from ``model``.
        buffer: the episodes.
        model: ``MetaDynamicsModule`` arguments other than the sizes.
        data: ``MetaDataModule`` arguments other than the buffer.
        trainer: extra ``pl.Trainer`` arguments.
        max_epochs: epochs of this fit.
        logger: a Lightning logger, or False.
        seed: seeds weights (new module) and batches.
        root_dir: Lightning's ``default_root_dir``.
    """
    datamodule = MetaDataModule.from_buffer(buffer, **{**data, "seed": seed})
    if module is None:
        module = MetaDynamicsModule(
            obs_dim=datamodule.obs_dim,
            action_dim=datamodule.action_dim,
            task_dim=datamodule.task_dim,
            **{"seed": seed, **model},
        )
    module.fit_normaliser(datamodule.statistics())
    fitter = make_trainer(max_epochs=max_epochs, logger=logger, root_dir=root_dir, **trainer)
    module.train()
    fitter.fit(module, datamodule)
    return module, fitter


def to_fitted_device(module: MetaDynamicsModule, fitter: pl.Trainer) -> MetaDynamicsModule:
    """Put a just-fitted module in eval mode on the device it was fitted on, for planning or evaluation.

    Lightning moves the model back to the CPU after fitting on an accelerator.
    """
    module.eval()
    device = fitter.strategy.root_device
    if device.type != "cpu":
        module.to(device)
    return module
