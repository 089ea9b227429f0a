"""Building a model's known physics (:class:`~mbmeta.types.KnownPhysics`) from its import path.

``"package.module:Class"`` names a ``torch.nn.Module`` subclass that takes no arguments and implements
:class:`~mbmeta.types.KnownPhysics` (e.g. ``mbmeta.envs.juggler_contact:BallContact``). The path, not the object, is
what a model's hyperparameters and checkpoint keep, so the model is rebuilt from the checkpoint alone. The module is
imported only when a model asks for it (this package imports no environment code itself). A checkpoint thus names
code that is already installed; nothing in it is executed, and only an ``nn.Module`` subclass is instantiated.
:func:`with_known_physics` lets a trained model act with a variant of its physics (``--agent.physics``).
"""

from __future__ import annotations

import copy

from torch import nn

from mbmeta.imports import import_object
from mbmeta.types import KnownPhysics


def build_known_physics(path: str, obs_dim: int) -> nn.Module:
    """Import and instantiate the known physics at ``path`` (``"package.module:Class"``) for ``obs_dim`` observations.

    Raises:
        ValueError: a malformed path, an import or attribute that fails, a class that is not an ``nn.Module``
            implementing :class:`~mbmeta.types.KnownPhysics`, or ``computed`` entries outside ``[0, obs_dim)``.
    """
    cls = import_object(path, "known_physics")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"known_physics {path!r} is not a torch.nn.Module subclass")
    physics = cls()
    if not isinstance(physics, KnownPhysics):
        raise ValueError(f"known_physics {path!r} lacks the KnownPhysics interface (computed, complete, loss)")
    computed = tuple(int(i) for i in physics.computed)
    if not computed or len(set(computed)) != len(computed) or not all(0 <= i < obs_dim for i in computed):
        raise ValueError(
            f"known_physics {path!r}: computed must be distinct observation entries in [0, {obs_dim}), got {computed}"
        )
    return physics


def with_known_physics(model, path: str):
    """The model acting with the known physics at ``path`` in place of its own, which shares the fitted parameters.

    For an acting-time variant of the physics a model was trained with (e.g. ``AdaptiveArmBallContact`` for a model
    trained with ``BallContact``): the new physics takes the model's physics' parameters and buffers themselves (tied,
    so a model trained further is seen at once), and must compute the same observation entries. Returns a shallow copy
    of the model (the networks are shared); the model itself is left unchanged.

    Raises:
        ValueError: the model has no known physics; ``path`` does not build one (see :func:`build_known_physics`),
            computes other entries, or does not take the model's physics' parameters (the names and shapes must match).
    """
    own = getattr(model, "physics", None)
    if own is None:
        raise ValueError(f"agent.physics {path!r}: the model has no known physics to replace")
    try:
        physics = build_known_physics(path, model.obs_dim)
    except ValueError as err:
        raise ValueError(f"agent.physics: {err}") from err
    if tuple(int(i) for i in physics.computed) != tuple(int(i) for i in own.computed):
        raise ValueError(
            f"agent.physics {path!r} computes entries {tuple(physics.computed)}, the model's "
            f"{type(own).__name__} {tuple(own.computed)}"
        )
    theirs = dict(own.named_parameters()) | dict(own.named_buffers())
    mine = dict(physics.named_parameters()) | dict(physics.named_buffers())
    if {n: tuple(t.shape) for n, t in mine.items()} != {n: tuple(t.shape) for n, t in theirs.items()}:
        raise ValueError(
            f"agent.physics {path!r} does not take the parameters of the model's {type(own).__name__}: "
            f"{sorted(mine)} vs {sorted(theirs)}"
        )
    for name, tensor in theirs.items():
        owner, _, leaf = name.rpartition(".")
        holder = physics.get_submodule(owner) if owner else physics
        if isinstance(tensor, nn.Parameter):
            holder._parameters[leaf] = tensor
        else:
            holder._buffers[leaf] = tensor
    physics.train(own.training)
    clone = copy.copy(model)
    clone._modules = {**model._modules, "physics": physics}
    return clone
