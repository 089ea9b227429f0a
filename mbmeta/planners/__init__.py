"""Batched sampling planners over action sequences: random shooting, CEM, iCEM and MPPI.

Every planner optimises an objective ``actions [B, N, H, A] -> returns [B, N]`` inside box bounds, for B
environments in one call; see :class:`~mbmeta.planners.base.Planner`.
"""

from __future__ import annotations

from typing import Any

from mbmeta.planners.base import INVALID_RETURN, Planner
from mbmeta.planners.cem import CEMPlanner
from mbmeta.planners.icem import ICEMPlanner
from mbmeta.planners.mppi import MPPIPlanner
from mbmeta.planners.noise import coloured_noise
from mbmeta.planners.random_shooting import RandomShootingPlanner

PLANNERS: dict[str, type[Planner]] = {
    "random_shooting": RandomShootingPlanner,
    "cem": CEMPlanner,
    "icem": ICEMPlanner,
    "mppi": MPPIPlanner,
}
"""Short name -> planner class."""

_ALIASES = {"rs": "random_shooting", "randomshooting": "random_shooting"}


def make_planner(name: str, **kwargs: Any) -> Planner:
    """Build a planner by short name (``"random_shooting"``/``"rs"``, ``"cem"``, ``"icem"``, ``"mppi"``).

    Args:
        name: the planner's short name or class name (case-insensitive).
        **kwargs: the planner's constructor arguments (``low``, ``high`` and its settings).

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    by_class = {cls.__name__.lower(): short for short, cls in PLANNERS.items()}
    key = by_class.get(key, key)
    if key not in PLANNERS:
        raise ValueError(f"unknown planner {name!r}; valid names are {sorted(PLANNERS)} (or 'rs')")
    return PLANNERS[key](**kwargs)


__all__ = [
    "INVALID_RETURN",
    "PLANNERS",
    "CEMPlanner",
    "ICEMPlanner",
    "MPPIPlanner",
    "Planner",
    "RandomShootingPlanner",
    "coloured_noise",
    "make_planner",
]
