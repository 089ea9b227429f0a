"""Building a model's known physics (:class:`~mbmeta.types.KnownPhysics`) from its import path.

``"package.module:Class"`` names a ``torch.nn.Module`` subclass that takes no arguments and implements
:class:`~mbmeta.types.KnownPhysics` (e.g. ``mbmeta.envs.juggler_contact:BallContact``). The path, not the object, is
what a model's hyperparameters and checkpoint keep, so the model is rebuilt from the checkpoint alone. The module is
imported only when a model asks for it (this package imports no environment code itself). A checkpoint thus names
code that is already installed; nothing in it is executed, and only an ``nn.Module`` subclass is instantiated.
"""

from __future__ import annotations

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
