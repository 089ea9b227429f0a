"""Safe reading and atomic writing of model checkpoints.

A checkpoint downloaded from someone else is a zip of pickles, and an ordinary ``torch.load`` runs whatever code a
pickle names. Every checkpoint mbmeta reads goes through :func:`load_checkpoint`, which uses
``torch.load(..., weights_only=True)``: only tensors, containers and plain values are rebuilt, anything else is
refused. Every failure (missing, truncated, corrupt, unsafe, not an mbmeta checkpoint) raises
:class:`CheckpointError` naming the file and what is wrong.

Writing goes through :func:`save_checkpoint`: a temporary sibling file, flushed and fsynced, then renamed over the
destination, so a crash leaves the old checkpoint or the new one, never a partial file.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from mbmeta.control.agent import MPCAgent
    from mbmeta.planners.base import Planner
from mbmeta.data.atomic import fsync_directory
from mbmeta.training.module import MetaDynamicsModule

REQUIRED_KEYS = ("state_dict", "hyper_parameters")


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupt, unsafe or not an mbmeta model checkpoint."""


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Read a checkpoint without executing pickled code.

    Args:
        path: a Lightning checkpoint (``.ckpt``) written by ``mbmeta train`` or ``mbmeta fit``.
        map_location: where tensors are loaded (default ``"cpu"``).

    Returns:
        The checkpoint dictionary (``state_dict``, ``hyper_parameters``, ...).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is truncated or corrupt, carries objects other than tensors and plain values
            (e.g. a malicious pickle), or lacks ``state_dict`` / ``hyper_parameters``; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # torch raises UnpicklingError both for refused globals ("Weights only load failed") and for garbage.
        raise CheckpointError(
            f"checkpoint {str(path)!r} was refused: it is corrupt or holds objects other than tensors and plain "
            f"values, which could run code when loaded (only load checkpoints from sources you trust). "
            f"Details: {_unpickling_reason(err)}"
        ) from err
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError, AttributeError) as err:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is truncated or corrupt: {type(err).__name__}: {_first_line(err)}"
        ) from err
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} holds a {type(checkpoint).__name__}, not a checkpoint dict")
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(f"checkpoint {str(path)!r} is not an mbmeta model checkpoint: missing {missing}")
    return checkpoint


def load_module(
    path: str | os.PathLike[str], map_location: str | torch.device | None = "cpu", *, eval_mode: bool = True
) -> MetaDynamicsModule:
    """Rebuild a :class:`~mbmeta.training.module.MetaDynamicsModule` from a checkpoint, safely.

    The file is read once with :func:`load_checkpoint`; the module is built from the saved hyperparameters and its
    weights (normaliser statistics included) are loaded strictly.

    Args:
        path: the checkpoint.
        map_location: where the weights go (default ``"cpu"``).
        eval_mode: return the module in ``eval()`` mode (for planning); False leaves it in training mode.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: see :func:`load_checkpoint`; also when the hyperparameters or weights do not fit the
            current model code.
    """
    from mbmeta.training.module import MetaDynamicsModule

    checkpoint = load_checkpoint(path, map_location)
    hparams = checkpoint["hyper_parameters"]
    if not isinstance(hparams, dict):
        raise CheckpointError(f"checkpoint {str(path)!r}: hyper_parameters is a {type(hparams).__name__}, not a dict")
    # LightningCLI adds private entries (``_instantiator``, ``_class_path``) that are not model arguments.
    hparams = {key: value for key, value in hparams.items() if not str(key).startswith("_")}
    try:
        module = MetaDynamicsModule(**hparams)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {str(path)!r}: its hyperparameters do not build a model: {err}") from err
    try:
        module.load_state_dict(checkpoint["state_dict"], strict=True)
    except (RuntimeError, TypeError, KeyError) as err:
        raise CheckpointError(
            f"checkpoint {str(path)!r}: its weights do not fit the model: {_first_line(err)}"
        ) from err
    if map_location is not None:
        module.to(map_location)
    return module.eval() if eval_mode else module


def load_agent(
    path: str | os.PathLike[str],
    planner: Planner,
    reward_fn: Any = None,
    termination_fn: Any = None,
    *,
    map_location: str | torch.device | None = "cpu",
    **kwargs: Any,
) -> MPCAgent:
    """An :class:`~mbmeta.control.agent.MPCAgent` around the model of a checkpoint, loaded safely.

    Args:
        path: a checkpoint written by ``mbmeta train`` or ``mbmeta fit``.
        planner: the planner (its bounds must be the environment's action bounds).
        reward_fn: exact reward ``(obs, action, next_obs) -> [*S]`` for planning, or None for the learned reward.
        termination_fn: predicted termination, or None.
        map_location: where the model goes (the agent plans there).
        **kwargs: further ``MPCAgent`` arguments (horizon, context_size, propagation, ...).

    Raises:
        FileNotFoundError, CheckpointError: as :func:`load_checkpoint`.
    """
    from mbmeta.control.agent import MPCAgent

    module = load_module(path, map_location)
    return MPCAgent(module.dynamics, planner, reward_fn, termination_fn, **kwargs)


def save_checkpoint(trainer: pl.Trainer, path: str | os.PathLike[str]) -> Path:
    """``trainer.save_checkpoint`` made atomic: a crash never leaves a partial checkpoint at ``path``.

    Call it on every rank (Lightning writes from rank 0 only); the rename happens where the file was written.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        trainer.save_checkpoint(tmp, weights_only=False)
        if trainer.is_global_zero:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
            fsync_directory(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _unpickling_reason(err: BaseException) -> str:
    """The informative line of torch's weights-only refusal (which global was blocked), else the first line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    named = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    return named[0] if named else (lines[0] if lines else type(err).__name__)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
