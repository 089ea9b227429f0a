"""Fine-tuning: a meta-trained model, some weights frozen, a few epochs on a new task's episodes."""

from __future__ import annotations

import copy
from typing import Any

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.models.dynamics import FinetuneMode
from mbmeta.training.datamodule import MetaDataModule
from mbmeta.training.fitting import make_trainer, to_fitted_device
from mbmeta.training.module import MetaDynamicsModule

FINETUNE_MODES: tuple[FinetuneMode, ...] = ("all", "frozen_encoder", "last_layer")


def finetune(
    module: MetaDynamicsModule,
    buffer: EpisodeBuffer,
    *,
    mode: FinetuneMode = "all",
    epochs: int = 20,
    lr: float | None = None,
    data: dict[str, Any] | None = None,
    trainer: dict[str, Any] | None = None,
    seed: int = 0,
) -> MetaDynamicsModule:
    """Fine-tune a copy of ``module`` on ``buffer`` (episodes of the new task); the original is left untouched.

    Args:
        module: the meta-trained model.
        buffer: the new task's episodes (at least one episode longer than ``context_length + target_length``).
        mode: ``all`` weights, ``frozen_encoder`` (adapter frozen) or ``last_layer`` (output layers only).
        epochs: passes of ``samples_per_epoch`` segments.
        lr: learning rate (default: the module's, divided by 3, a common choice for fine-tuning).
        data: ``MetaDataModule`` arguments (``context_length`` etc.); validation is off (the data are few).
        trainer: extra ``pl.Trainer`` arguments, e.g. ``{"accelerator": "gpu"}`` (default: one CPU device).
        seed: seeds segment sampling.

    Returns:
        The fine-tuned copy, in eval mode. Its normaliser is the pretrained one (few episodes are a poor basis for
        new statistics, and the weights were trained in the old scaling).

    Raises:
        ValueError: an unknown ``mode``.
    """
    if mode not in FINETUNE_MODES:
        raise ValueError(f"fine-tune mode must be one of {', '.join(FINETUNE_MODES)}; got {mode!r}")
    tuned = copy.deepcopy(module)
    tuned.configure_finetune(mode)
    tuned.hparams.lr = lr if lr is not None else module.hparams.lr / 3
    _fit(tuned, buffer, epochs, data, trainer, seed)
    return tuned


def train_from_scratch(
    like: MetaDynamicsModule,
    buffer: EpisodeBuffer,
    *,
    epochs: int,
    data: dict[str, Any] | None = None,
    trainer: dict[str, Any] | None = None,
    seed: int = 0,
) -> MetaDynamicsModule:
    """A new model with ``like``'s hyperparameters, trained only on ``buffer`` (its normaliser fitted on it)."""
    scratch = MetaDynamicsModule(**{**like.hparams, "seed": seed})
    _fit(scratch, buffer, epochs, data, trainer, seed)
    return scratch


def _fit(
    module: MetaDynamicsModule,
    buffer: EpisodeBuffer,
    epochs: int,
    data: dict[str, Any] | None,
    trainer: dict[str, Any] | None,
    seed: int,
) -> None:
    settings = {"samples_per_epoch": 4096, "batch_size": 128, **(data or {}), "val_fraction": 0.0, "seed": seed}
    datamodule = MetaDataModule.from_buffer(buffer, **settings)
    fitter = make_trainer(
        max_epochs=epochs, **{**(trainer or {}), "enable_progress_bar": False, "limit_val_batches": 0}
    )
    module.train()
    fitter.fit(module, datamodule)
    to_fitted_device(module, fitter)
