"""Typed settings of each planner: what a user configures, without the action bounds (those come from the family).

One small dataclass per planner, all subclasses of :class:`PlannerSettings`, so that jsonargparse offers them as
``class_path``/``init_args`` choices with ``--help`` text from the docstrings below and rejects an unknown option or
a wrong type while parsing::

    --agent.planner icem --agent.planner.population 300           # command line
    planner: {class_path: icem, init_args: {population: 300}}       # YAML

The classes are named by the planners' short names (``cem``, ``icem``, ``mppi``, ``random_shooting``) against the
usual class-name style on purpose: jsonargparse resolves a bare ``class_path`` by class name, so the name a user
types is the class's name. Each field and default mirrors the planner's constructor (a test keeps them in step);
:meth:`PlannerSettings.build` adds the bounds and builds the planner.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from mbmeta.planners.base import Bounds, Planner
from mbmeta.planners.cem import CEMPlanner
from mbmeta.planners.icem import ICEMPlanner
from mbmeta.planners.mppi import MPPIPlanner
from mbmeta.planners.random_shooting import RandomShootingPlanner

# Bounds used only to check settings when they are made (every planner's checks are about its own settings).
_CHECK_LOW, _CHECK_HIGH = [-1.0], [1.0]


class PlannerSettings(ABC):
    """A planner by name with its settings, not yet bound to an action space.

    Subclasses are dataclasses named by the planner's short name, with one field per constructor argument after
    ``low`` and ``high``. Making one checks its values with the planner's own checks.
    """

    @property
    @abstractmethod
    def planner_class(self) -> type[Planner]:
        """The planner these settings build (a class attribute of each subclass)."""

    @property
    def name(self) -> str:
        """The planner's short name (``cem``, ``icem``, ``mppi`` or ``random_shooting``)."""
        return type(self).__name__

    def options(self) -> dict[str, Any]:
        """The planner's constructor arguments other than the bounds."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]  # every subclass is a dataclass

    def build(self, low: Bounds, high: Bounds) -> Planner:
        """The planner with these settings within the action bounds ``low``/``high`` ``[A]``."""
        return self.planner_class(low, high, **self.options())

    def as_config(self) -> dict[str, Any]:
        """``{"class_path": name, "init_args": options}``: the YAML / JSON form (what ``config.json`` records)."""
        return {"class_path": self.name, "init_args": self.options()}

    def __post_init__(self) -> None:
        try:
            self.build(_CHECK_LOW, _CHECK_HIGH)
        except ValueError as err:
            raise ValueError(f"planner {self.name!r}: {err}") from err


@dataclass
class cem(PlannerSettings):  # lower case: the name users type (module docstring)
    """Cross-entropy method (PETS): refit a diagonal Gaussian to the best sequences, several times.

    Args:
        population: N, action sequences drawn per iteration.
        elites: best sequences the Gaussian is refitted to (at most population).
        iterations: refits per planning step.
        alpha: weight of the previous mean and std in each refit, in [0, 1).
        init_std: initial std as a fraction of half the action range.
    """

    planner_class: ClassVar[type[Planner]] = CEMPlanner

    population: int = 500
    elites: int = 50
    iterations: int = 5
    alpha: float = 0.1
    init_std: float = 0.5


@dataclass
class icem(PlannerSettings):
    """iCEM: CEM with coloured noise, elites kept between iterations and steps, and a shrinking population.

    Args:
        population: N of the first iteration.
        elites: best sequences the Gaussian is refitted to (at most population).
        iterations: refits per planning step.
        alpha: weight of the previous mean and std in each refit, in [0, 1).
        init_std: initial std as a fraction of half the action range.
        beta: colour exponent of the noise along the horizon, >= 0 (0: white; 2-3 in the paper).
        keep_elites: fraction of the elites carried into the next iteration and the next step, in [0, 1].
        decay: population shrink factor per iteration, >= 1.
        return_best: plan the best sequence of the last iteration instead of the elites' mean.
    """

    planner_class: ClassVar[type[Planner]] = ICEMPlanner

    population: int = 300
    elites: int = 30
    iterations: int = 4
    alpha: float = 0.1
    init_std: float = 0.5
    beta: float = 2.0
    keep_elites: float = 0.3
    decay: float = 1.25
    return_best: bool = False


@dataclass
class mppi(PlannerSettings):
    """MPPI: move the mean by a return-weighted average of perturbed sequences, several times.

    Args:
        population: N, sequences per iteration (the unperturbed mean is one of them).
        iterations: mean updates per planning step.
        temperature: lambda > 0 of the weights softmax(return / lambda), in units of return (smaller is greedier).
        noise_std: std of the perturbations as a fraction of half the action range.
        alpha: weight of the previous mean in each update, in [0, 1).
    """

    planner_class: ClassVar[type[Planner]] = MPPIPlanner

    population: int = 500
    iterations: int = 5
    temperature: float = 1.0
    noise_std: float = 0.5
    alpha: float = 0.0


@dataclass
class random_shooting(PlannerSettings):
    """Random shooting: the best of uniformly drawn sequences and the warm start.

    Args:
        population: N, sequences evaluated per planning step (the warm start is one of them).
    """

    planner_class: ClassVar[type[Planner]] = RandomShootingPlanner

    population: int = 500


PLANNER_SETTINGS: dict[str, type[PlannerSettings]] = {cls.__name__: cls for cls in (random_shooting, cem, icem, mppi)}
"""Short name -> settings class, in the order of :data:`mbmeta.planners.PLANNERS`."""

# Other spellings accepted by the Python API and in old run records (not on the command line).
_ALIASES = {"rs": "random_shooting", "randomshooting": "random_shooting"}
_ALIASES.update({cls.planner_class.__name__.lower(): name for name, cls in PLANNER_SETTINGS.items()})


def planner_name(name: str) -> str:
    """The short name of a planner given by short name, alias (``rs``) or class name, case-insensitively.

    A dotted path (jsonargparse's ``class_path``, e.g. ``mbmeta.planners.settings.icem``) is read by its last part.

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    key = str(name).strip().rsplit(".", 1)[-1].lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in PLANNER_SETTINGS:
        raise ValueError(f"unknown planner {name!r}; valid names are {sorted(PLANNER_SETTINGS)} (or 'rs')")
    return key


def planner_settings(
    spec: PlannerSettings | str | Mapping[str, Any], options: Mapping[str, Any] | None = None
) -> PlannerSettings:
    """Typed planner settings from any of their spellings.

    Args:
        spec: settings (returned as they are, unless ``options`` are given), a planner name, or a mapping
            ``{"class_path": name, "init_args": {...}}`` (``init_args`` may be left out).
        options: options over those of ``spec`` (the old ``planner_options`` of a run record).

    Returns:
        :class:`PlannerSettings` of that planner; options not given take the planner's defaults.

    Raises:
        ValueError: unknown planner, unknown option (named), or a value the planner refuses.
    """
    if isinstance(spec, PlannerSettings):
        name, given = spec.name, spec.options()
    elif isinstance(spec, str):
        name, given = spec, {}
    elif isinstance(spec, Mapping) and "class_path" in spec and set(spec) <= {"class_path", "init_args"}:
        name, given = spec["class_path"], dict(spec.get("init_args") or {})
    else:
        raise ValueError(
            f"planner settings must be a planner name or {{'class_path': name, 'init_args': {{...}}}}, got {spec!r}"
        )
    if isinstance(spec, PlannerSettings) and not options:
        return spec
    cls = PLANNER_SETTINGS[planner_name(name)]
    given = {**given, **(options or {})}
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"planner {cls.__name__!r} has no option(s) {unknown}; its options are {sorted(known)}")
    return cls(**given)
