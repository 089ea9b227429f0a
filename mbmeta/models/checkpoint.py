"""Load the dynamics model out of a training checkpoint, without Lightning and without unpickling code.

A control loop needs only the :class:`~mbmeta.models.dynamics.MetaDynamicsModel`, not the training module around it:
this reads the checkpoint's hyperparameters and weights with ``torch.load(weights_only=True)`` (plain tensors and
containers only; a checkpoint carrying pickled code is refused) and rebuilds the model from them.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import torch

from mbmeta.models.dynamics import MetaDynamicsModel

PREFIX = "model."  # where the training module keeps the dynamics model in its state_dict


def load_dynamics(path: str | os.PathLike[str], map_location: str | torch.device | None = "cpu") -> MetaDynamicsModel:
    """Rebuild the trained dynamics model of a checkpoint written by ``mbmeta train`` / ``mbmeta fit``.

    Args:
        path: the checkpoint file.
        map_location: where to put the weights.

    Returns:
        The model in eval mode, normaliser included.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a readable, safe mbmeta checkpoint (the message names the file and the problem).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, foreign pickle, unsafe globals: all mean "not a safe checkpoint"
        raise ValueError(f"cannot load checkpoint {str(path)!r} safely: {err}") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise ValueError(f"{str(path)!r} is not an mbmeta checkpoint (no state_dict / hyper_parameters)")
    accepted = inspect.signature(MetaDynamicsModel).parameters
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if k in accepted}
    model = MetaDynamicsModel(**hparams)
    state = {k[len(PREFIX) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(PREFIX)}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"checkpoint {str(path)!r} does not match its own hyperparameters: {err}") from err
    return model.to(map_location).eval() if map_location is not None else model.eval()
