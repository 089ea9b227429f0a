"""mbmeta: model-based meta-reinforcement learning with learned dynamics.

The protocols and value types to implement or consume, importable from here (loaded on first use, so that
``import mbmeta`` stays light):

- :class:`MetaDynamics`: ``adapt(context, mask=None, task=None) -> AdaptedDynamics``, once per control step;
- :class:`AdaptedDynamics`: ``dynamics(obs [E, B, *S, O], action [E, B, *S, A]) -> Prediction``, with
  ``ensemble_size`` E; called ``N × H`` times inside the planner;
- :class:`Prediction`: ``mean``/``var`` ``[E, B, *S, O]``, ``reward`` ``[E, B, *S]`` or None;
- :data:`Objective`: ``actions [B, N, H, A] -> returns [B, N]``, what a planner maximises;
- :class:`Transition`, :class:`PlanResult`, :class:`TaskParams`, :data:`RewardFn`, :data:`TerminationFn`.

They live in :mod:`mbmeta.types` (shape letters defined there); ``docs/bring_your_own_robot.md`` shows a model of
your own and the planner on its own.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
from mbmeta.threads import configure_threads as configure_threads  # noqa: E402

PUBLIC_TYPES = (
    "AdaptedDynamics",
    "MetaDynamics",
    "Objective",
    "PlanResult",
    "Prediction",
    "RewardFn",
    "TaskParams",
    "TerminationFn",
    "Transition",
)

__all__ = ["__version__", "configure_threads", *PUBLIC_TYPES]


def __getattr__(name: str) -> Any:
    if name in PUBLIC_TYPES:
        import mbmeta.types

        return getattr(mbmeta.types, name)
    raise AttributeError(f"module 'mbmeta' has no attribute {name!r}")
