"""Batched sampling planners over action sequences: random shooting, CEM, iCEM and MPPI.

Every planner optimises an objective ``actions [B, N, H, A] -> returns [B, N]`` inside box bounds, for B
environments in one call; see :class:`~mbmeta.planners.base.Planner`. :class:`RecedingHorizon` runs one at every
control step (warm start and carry shifted by :func:`shift_plan`). The planners' typed, bound-free settings (what a
config names) are in :mod:`mbmeta.planners.settings`.
"""

from __future__ import annotations

from typing import Any

from mbmeta.planners.base import INVALID_RETURN, Planner
from mbmeta.planners.cem import CEMPlanner
from mbmeta.planners.icem import ICEMPlanner
from mbmeta.planners.mppi import MPPIPlanner
from mbmeta.planners.noise import coloured_noise
from mbmeta.planners.random_shooting import RandomShootingPlanner
from mbmeta.planners.receding import RecedingHorizon, shift_plan
from mbmeta.planners.settings import PLANNER_SETTINGS, PlannerSettings, planner_name, planner_settings

PLANNERS: dict[str, type[Planner]] = {name: cls.planner_class for name, cls in PLANNER_SETTINGS.items()}
"""Short name -> planner class."""


def make_planner(name: str, **kwargs: Any) -> Planner:
    """Build a planner by short name (``"random_shooting"``/``"rs"``, ``"cem"``, ``"icem"``, ``"mppi"``).

    Args:
        name: the planner's short name or class name (case-insensitive).
        **kwargs: the planner's constructor arguments (``low``, ``high`` and its settings).

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    return PLANNERS[planner_name(name)](**kwargs)


__all__ = [
    "INVALID_RETURN",
    "PLANNERS",
    "PLANNER_SETTINGS",
    "CEMPlanner",
    "ICEMPlanner",
    "MPPIPlanner",
    "Planner",
    "PlannerSettings",
    "RandomShootingPlanner",
    "RecedingHorizon",
    "coloured_noise",
    "make_planner",
    "planner_name",
    "planner_settings",
    "shift_plan",
]
