"""Reading checkpoints safely, and the dynamics model out of one, without Lightning.

A checkpoint downloaded from someone else is a zip of pickles, and an ordinary ``torch.load`` runs whatever code a
pickle names. Every checkpoint mbmeta reads goes through :func:`load_checkpoint`, which uses
``torch.load(..., weights_only=True)``: only tensors, containers and plain values are rebuilt, anything else is
refused. Every failure (missing, truncated, corrupt, unsafe, not an mbmeta checkpoint, hyperparameters this version
does not know) raises :class:`CheckpointError` naming the file and what is wrong.

A control loop needs only the :class:`~mbmeta.models.dynamics.MetaDynamicsModel`: :func:`load_dynamics` rebuilds it
from a checkpoint's hyperparameters and weights. The Lightning module around it is rebuilt by
:func:`mbmeta.training.checkpoint.load_module` from the same reader.
"""

from __future__ import annotations

import inspect
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from mbmeta.models.dynamics import MetaDynamicsModel

PREFIX = "model."  # where the training module keeps the dynamics model in its state_dict
OPTIMISER_HPARAMS = ("lr", "weight_decay", "physics_lr")
"""Hyperparameters a checkpoint carries that are not :class:`MetaDynamicsModel` arguments (how it was trained)."""


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
    check_zip_integrity(path)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError:
        raise  # names the file; a permission problem, not a damaged file
    except pickle.UnpicklingError as err:
        # torch raises UnpicklingError both for refused globals ("Weights only load failed") and for garbage.
        raise CheckpointError(
            f"checkpoint {str(path)!r} was refused: it is corrupt or holds objects other than tensors and plain "
            f"values, which could run code when loaded (only load checkpoints from sources you trust). "
            f"Details: {_unpickling_reason(err)}"
        ) from err
    except Exception as err:  # a damaged file can fail anywhere inside torch's reader (IndexError, OverflowError, ...)
        raise CheckpointError(
            f"checkpoint {str(path)!r} is truncated or corrupt: {type(err).__name__}: {_first_line(err)}"
        ) from err
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} holds a {type(checkpoint).__name__}, not a checkpoint dict")
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(f"checkpoint {str(path)!r} is not an mbmeta model checkpoint: missing {missing}")
    if not isinstance(checkpoint["state_dict"], dict):
        raise CheckpointError(f"checkpoint {str(path)!r}: state_dict is a {type(checkpoint['state_dict']).__name__}")
    return checkpoint


def check_zip_integrity(path: Path) -> None:
    """Verify every member's CRC-32 (torch's own reader skips it, so a flipped byte in the weights would load).

    Raises:
        CheckpointError: a member fails its check, or the file is not a readable zip (names the file).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except PermissionError:
        raise
    except Exception as err:  # not a zip at all, truncated directory, ...
        raise CheckpointError(
            f"checkpoint {str(path)!r} is truncated or corrupt: {type(err).__name__}: {_first_line(err)}"
        ) from err
    if bad is not None:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: its member {bad!r} fails its CRC check")


def model_hparams(checkpoint: dict[str, Any], path: str | os.PathLike[str]) -> dict[str, Any]:
    """The :class:`MetaDynamicsModel` arguments among a checkpoint's hyperparameters.

    LightningCLI's private entries (``_instantiator``, ``_class_path``) and :data:`OPTIMISER_HPARAMS` are left out;
    any other name the model does not take is an error, never dropped silently.

    Raises:
        CheckpointError: hyperparameters that are not a dict, or names this version of the model does not know.
    """
    hparams = checkpoint["hyper_parameters"]
    if not isinstance(hparams, dict):
        raise CheckpointError(f"checkpoint {str(path)!r}: hyper_parameters is a {type(hparams).__name__}, not a dict")
    accepted = inspect.signature(MetaDynamicsModel).parameters
    public = {str(k): v for k, v in hparams.items() if not str(k).startswith("_")}
    unknown = sorted(k for k in public if k not in accepted and k not in OPTIMISER_HPARAMS)
    if unknown:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has hyperparameters {unknown} that this mbmeta version's model does not take "
            "(written by another version?)"
        )
    return {k: v for k, v in public.items() if k in accepted}


def load_dynamics(path: str | os.PathLike[str], map_location: str | torch.device | None = "cpu") -> MetaDynamicsModel:
    """Rebuild the trained dynamics model of a checkpoint written by ``mbmeta train`` / ``mbmeta fit``.

    Args:
        path: the checkpoint file.
        map_location: where to put the weights.

    Returns:
        The model in eval mode, normaliser included.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: see :func:`load_checkpoint` and :func:`model_hparams`; also when the weights do not fit.
    """
    checkpoint = load_checkpoint(path, map_location)
    hparams = model_hparams(checkpoint, path)
    try:
        model = MetaDynamicsModel(**hparams)
    except Exception as err:  # a damaged value can fail in any layer's constructor
        raise CheckpointError(f"checkpoint {str(path)!r}: its hyperparameters do not build a model: {err}") from err
    state = {k[len(PREFIX) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(PREFIX)}
    load_weights(model, state, path)
    return model.to(map_location).eval() if map_location is not None else model.eval()


def load_weights(module: torch.nn.Module, state: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """``module.load_state_dict(state, strict=True)``; :class:`CheckpointError` naming ``path`` if they do not fit."""
    try:
        module.load_state_dict(state, strict=True)
    except Exception as err:  # shapes, dtypes or keys that do not fit
        raise CheckpointError(
            f"checkpoint {str(path)!r}: its weights do not fit the model: {_first_line(err)}"
        ) from err


def _unpickling_reason(err: BaseException) -> str:
    """The informative line of torch's weights-only refusal (which global was blocked), else the first line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    named = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    return named[0] if named else (lines[0] if lines else type(err).__name__)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
