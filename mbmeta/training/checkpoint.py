"""Rebuilding the training module from a checkpoint, and writing checkpoints atomically.

Reading goes through :func:`mbmeta.models.checkpoint.load_checkpoint` (``weights_only``: no pickled code runs; every
failure is a :class:`~mbmeta.models.checkpoint.CheckpointError` naming the file). Writing goes through
:func:`save_checkpoint`: a temporary sibling file, flushed and fsynced, then renamed over the destination, so a crash
leaves the old checkpoint or the new one, never a partial file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from mbmeta.data.atomic import apply_umask, fsync_directory
from mbmeta.models.checkpoint import (
    CheckpointError,
    load_checkpoint,
)
from mbmeta.training.module import MetaDynamicsModule

if TYPE_CHECKING:
    import pytorch_lightning as pl


__all__ = ["CheckpointError", "load_checkpoint", "load_module", "save_checkpoint"]


def load_module(
    path: str | os.PathLike[str], map_location: str | torch.device | None = "cpu", *, eval_mode: bool = True
) -> MetaDynamicsModule:
    """Rebuild a :class:`~mbmeta.training.module.MetaDynamicsModule` from a checkpoint, safely.

    The file is read once with :func:`~mbmeta.models.checkpoint.load_checkpoint`; the module is built from the saved
    hyperparameters and its weights (normaliser statistics included) are loaded strictly.

    Args:
        path: the checkpoint.
        map_location: where the weights go (default ``"cpu"``).
        eval_mode: return the module in ``eval()`` mode (for planning); False leaves it in training mode.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is unreadable or unsafe, or its hyperparameters or weights do not fit the current
            model code.
    """
    module = MetaDynamicsModule.load_from_checkpoint(path, map_location)
    return module.eval() if eval_mode else module


def save_checkpoint(trainer: pl.Trainer, path: str | os.PathLike[str]) -> Path:
    """``trainer.save_checkpoint`` made atomic: a crash never leaves a partial checkpoint at ``path``.

    Weights and hyperparameters only, without the optimizer's and Lightning's loop state: the model-based loop builds
    a fresh Trainer (and optimizer) for every fit, so that state would never be read, and leaving it out keeps a
    run's committed model at a third of the size (Adam keeps two moments per weight).

    Call it on every rank (Lightning writes from rank 0 only); the rename happens where the file was written.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    apply_umask(tmp)
    try:
        trainer.save_checkpoint(tmp, weights_only=True)
        if trainer.is_global_zero:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
            fsync_directory(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return path
