"""Task families: one robot, many physics.

A :class:`TaskFamily` names the physical parameters it varies, a *train* split and a disjoint *test* split, samples
tasks from either with an explicit ``np.random.Generator``, and builds its Gymnasium environment. The environment
receives a task through ``env.reset(options={"task": task})`` or its settable ``task`` attribute (what
``vector_env.set_attr("task", ...)`` reaches), applies it to its physics, and reports it in ``info["task"]`` (a plain
``dict[str, float]``, so vector environments stack it) after every reset and step; the task never appears in the
observation. ``mbmeta train`` checks this contract before collecting (:mod:`mbmeta.envs.contract`);
:class:`~mbmeta.envs.mujoco_fields.MujocoFieldFamily` fulfils it for any Gymnasium MuJoCo env.

Splits follow CaDM (see ``DESIGN.md``): a split is a union of *regions*; a region gives each parameter a set of
allowed values, either discrete (:class:`Choice`) or an interval (:class:`Interval`). Sampling draws a region
uniformly, then each parameter independently within it. Regions let a test split pair parameters (e.g. the
pendulum's heavy-and-short / light-and-long corners). A family that follows a reference evaluation protocol also
names its test sets as :class:`Condition` s (CaDM's moderate and extreme sets), which the protocol reports apart.
A family may also define a *validation* split, disjoint from both: tasks outside the train range on which settings
that must extrapolate (a planner's, an adaptation's) are chosen without touching the test split.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from torch import Tensor

from mbmeta.types import Split, TaskParams


@dataclass(frozen=True)
class Choice:
    """A discrete set of allowed values."""

    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("Choice needs at least one value")
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))

    def sample(self, rng: np.random.Generator) -> float:
        """Draw one value uniformly from the set."""
        return self.values[int(rng.integers(len(self.values)))]

    def contains(self, value: float) -> bool:
        """Whether ``value`` is one of the allowed values (to 1e-9)."""
        return any(math.isclose(value, v, abs_tol=1e-9) for v in self.values)

    def describe(self) -> str:
        """Short text for tables: ``{0.75, 0.85}``."""
        return "{" + ", ".join(f"{v:g}" for v in self.values) + "}"


@dataclass(frozen=True)
class Interval:
    """A closed interval ``[low, high]`` of allowed values, sampled uniformly."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(f"Interval needs low <= high, got [{self.low}, {self.high}]")

    def sample(self, rng: np.random.Generator) -> float:
        """Draw one value uniformly from the interval."""
        return float(rng.uniform(self.low, self.high))

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the interval."""
        return self.low <= value <= self.high

    def describe(self) -> str:
        """Short text for tables: ``[2, 3.5]``."""
        return f"[{self.low:g}, {self.high:g}]"


ValueSet = Choice | Interval
Region = Mapping[str, ValueSet]


@dataclass(frozen=True)
class Condition:
    """A named set of tasks that an evaluation protocol runs and reports on its own (e.g. one of CaDM's test sets).

    Tasks are drawn from a condition as from a split: a region uniformly, then each parameter within it.

    Attributes:
        name: identifier, e.g. ``"c1"``; also accepted wherever a split name is (``family.sample(rng, n, "c1")``).
        group: the average the condition enters, e.g. ``"moderate"`` or ``"extreme"`` (CaDM's Table 1 groups).
        regions: the condition's regions.
    """

    name: str
    group: str
    regions: tuple[Region, ...]

    def __post_init__(self) -> None:
        if not self.regions:
            raise ValueError(f"condition {self.name!r} needs at least one region")
        object.__setattr__(self, "regions", tuple(self.regions))


@dataclass(frozen=True)
class Parameter:
    """One varied physical parameter.

    Attributes:
        name: identifier, e.g. ``"mass_scale"``.
        nominal: value of the unmodified robot (1.0 for scale factors).
        description: one line for ``mbmeta envs`` and the docs.
        minimum: smallest physically valid value (exclusive when ``strict`` is True); values below raise ValueError.
        strict: whether ``minimum`` itself is invalid (mass scale must be > 0; damping scale may be 0).
        integer: the parameter is an index (e.g. which leg is crippled).
    """

    name: str
    nominal: float
    description: str
    minimum: float = 0.0
    strict: bool = True
    integer: bool = False


class TaskFamily(ABC):
    """A family of tasks: a robot, the parameters varied, the train/test splits and exact reward functions.

    Subclasses set the class attributes below and implement :meth:`make_env`, :meth:`reward` and
    :meth:`terminated`; instances are stateless (one per family, held by the registry).
    ``reward`` and ``terminated`` are batched torch functions over any leading dims that equal what
    ``env.step`` returns on real transitions.
    """

    name: str = ""
    env_id: str = ""
    description: str = ""
    parameters: tuple[Parameter, ...] = ()
    train: tuple[Region, ...] = ()
    test: tuple[Region, ...] = ()
    # Optional: tasks outside the train range, disjoint from the test split, for choosing settings that must
    # extrapolate (``mbmeta evaluate --split validation``); empty for families without one.
    validation: tuple[Region, ...] = ()
    episode_steps: int = 1000
    notes: str = ""  # how the family differs from its Gymnasium/CaDM origin (obs, reward), for the docs
    # Named evaluation conditions of the family's reference protocol (CaDM's test sets, each with its group); their
    # regions together make the test split. Empty for families without one. ``protocol_episodes`` is how many
    # episodes the reference protocol runs per condition (CaDM's ``total_test``).
    conditions: tuple[Condition, ...] = ()
    protocol_episodes: int = 0
    # What benchmarks/env_speed.py compares the family env against: a Gymnasium id (e.g. "HalfCheetah-v5") or an
    # entry point "module:Class" of the same model stepped without the task layer.
    bare_env_id: str | None = None
    bare_env_entry_point: str | None = None

    # ----- tasks -------------------------------------------------------------------------------------------
    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the varied parameters, in order."""
        return tuple(p.name for p in self.parameters)

    def nominal(self) -> TaskParams:
        """The unmodified robot's task."""
        return TaskParams(tuple((p.name, float(p.nominal)) for p in self.parameters))

    def sample(self, rng: np.random.Generator, n: int, split: Split = "train") -> list[TaskParams]:
        """Draw ``n`` tasks from a split.

        Args:
            rng: source of randomness (the only one used).
            n: number of tasks, >= 0.
            split: ``"train"``, ``"test"``, ``"validation"`` (families that define one) or a condition's name.

        Returns:
            ``n`` tasks.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        regions = self.regions(split)
        tasks = []
        for _ in range(n):
            region = regions[int(rng.integers(len(regions)))]
            tasks.append(TaskParams(tuple((p.name, region[p.name].sample(rng)) for p in self.parameters)))
        return tasks

    def regions(self, split: Split) -> tuple[Region, ...]:
        """The regions of a split (or of a named condition); raises ValueError naming the valid splits."""
        if split == "train":
            return self.train
        if split == "test":
            return self.test
        if split == "validation" and self.validation:
            return self.validation
        for condition in self.conditions:
            if condition.name == split:
                return condition.regions
        valid = ["train", "test", *(["validation"] if self.validation else []), *(c.name for c in self.conditions)]
        raise ValueError(
            f"family {self.name!r}: unknown split {split!r}; valid splits are {', '.join(repr(v) for v in valid)}"
        )

    def condition(self, name: str) -> Condition:
        """The named evaluation condition; raises ValueError listing the family's conditions."""
        for condition in self.conditions:
            if condition.name == name:
                return condition
        valid = [c.name for c in self.conditions]
        raise ValueError(f"family {self.name!r} has no condition {name!r}; its conditions are {valid}")

    def in_split(self, task: TaskParams, split: Split) -> bool:
        """Whether ``task`` could have been drawn from ``split``."""
        values = task.as_dict()
        return any(all(region[n].contains(values[n]) for n in self.parameter_names) for region in self.regions(split))

    def validate(self, task: TaskParams | Mapping[str, float]) -> TaskParams:
        """Check a task's names and values and return it as :class:`TaskParams`.

        Raises:
            KeyError: an unknown or missing parameter name (the message lists the valid ones).
            ValueError: a physically invalid value (non-finite, below the parameter's minimum, non-integer index).
        """
        values = dict(task.values) if isinstance(task, TaskParams) else dict(task)
        valid = self.parameter_names
        unknown = [k for k in values if k not in valid]
        missing = [k for k in valid if k not in values]
        if unknown or missing:
            raise KeyError(
                f"family {self.name!r}: unknown parameters {unknown}, missing {missing}; "
                f"valid parameters are {list(valid)}"
            )
        for p in self.parameters:
            v = float(values[p.name])
            bad = not math.isfinite(v) or v < p.minimum or (p.strict and v <= p.minimum)
            if bad:
                bound = ">" if p.strict else ">="
                raise ValueError(f"family {self.name!r}: parameter {p.name!r} must be {bound} {p.minimum:g}, got {v}")
            if p.integer and v != int(v):
                raise ValueError(f"family {self.name!r}: parameter {p.name!r} is an index, got {v}")
        return TaskParams(tuple((n, float(values[n])) for n in valid))

    # ----- environment and exact functions -----------------------------------------------------------------
    @abstractmethod
    def make_env(self, **kwargs: Any) -> gym.Env:
        """Build one environment of this family (``gymnasium.make(self.env_id, **kwargs)``)."""

    @property
    def action_space(self) -> gym.spaces.Box:
        """The environment's action space (read once from a built environment, then cached)."""
        return self._spaces()[1]

    @property
    def observation_space(self) -> gym.spaces.Box:
        """The environment's observation space (read once from a built environment, then cached)."""
        return self._spaces()[0]

    @property
    def obs_dim(self) -> int:
        """O, the observation size."""
        return int(self.observation_space.shape[0])

    @property
    def action_dim(self) -> int:
        """A, the action size."""
        return int(self.action_space.shape[0])

    def _spaces(self) -> tuple[gym.spaces.Box, gym.spaces.Box]:
        cached = self.__dict__.get("_cached_spaces")
        if cached is None:
            env = self.make_env()
            try:
                cached = (env.observation_space, env.action_space)
            finally:
                env.close()
            self.__dict__["_cached_spaces"] = cached
        return cached

    @abstractmethod
    def reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """Exact reward: ``obs [*S, O], action [*S, A], next_obs [*S, O] -> [*S]``, equal to ``env.step``'s."""

    @abstractmethod
    def terminated(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """Exact termination: ``[*S, O], [*S, A], [*S, O] -> [*S]`` bool, equal to ``env.step``'s."""

    success_text: str = ""  # what success means, for the docs ("" where the family defines none)
    # Random actions of the task-effect check (mbmeta.envs.task_effect) are uniform within this fraction of each
    # half-range about the centre of the bounds; below 1 where full-range actions end an episode before every
    # parameter can show (a juggler with wide servos throws the ball away before it first lands).
    probe_action_scale: float = 1.0

    def make_controller(self) -> Any | None:
        """A scripted controller for one environment (``act(obs [O]) -> [A]``, ``reset()``), or None if none exists.

        Used for initial data (``loop.initial_policy: scripted``); the controller must not read the task.
        """
        return None

    def success(self, episode: Mapping[str, np.ndarray]) -> bool | None:
        """Whether an episode reached the family's goal; None where the family defines no success.

        Args:
            episode: one episode's per-step arrays, as ``EpisodeBuffer.episode`` returns them: ``obs [L, O]``,
                ``action [L, A]``, ``reward [L]``, ``next_obs [L, O]``, ``terminated [L]``, ``truncated [L]``.
        """
        return None

    def measures(self, episode: Mapping[str, np.ndarray]) -> dict[str, float]:
        """Numbers that explain an episode's outcome beside :meth:`success` (e.g. how many target bounces it made).

        Evaluations write them per episode (``results.csv`` columns ``measure.<name>``, ``results.json`` and the W&B
        table under ``measures``) and the training loop logs their means per iteration. Empty by default.

        Args:
            episode: one episode's per-step arrays, as for :meth:`success`.
        """
        return {}


def held_upright(cos_angle: np.ndarray, tolerance: float = 0.3, fraction: float = 0.1) -> bool:
    """Whether a pole stayed within ``tolerance`` rad of upright over the last ``fraction`` of an episode.

    Args:
        cos_angle: ``[L]`` cosine of the pole angle after each step (1 upright).
        tolerance: largest angle from upright, in radians.
        fraction: the final part of the episode that must be upright (at least one step).
    """
    tail = max(1, int(round(len(cos_angle) * fraction)))
    return bool(len(cos_angle) > 0 and (np.asarray(cos_angle[-tail:]) >= math.cos(tolerance)).all())


def check_disjoint(family: TaskFamily, samples: int = 200, seed: int = 0) -> None:
    """Raise ValueError if sampled test (or validation) tasks fall in another split (a family-definition bug)."""
    rng = np.random.default_rng(seed)
    for task in family.sample(rng, samples, "test"):
        if family.in_split(task, "train"):
            raise ValueError(f"family {family.name!r}: test task {task.as_dict()} lies in the train split")
    if not family.validation:
        return
    for task in family.sample(rng, samples, "validation"):
        for other in ("train", "test"):
            if family.in_split(task, other):
                raise ValueError(f"family {family.name!r}: validation task {task.as_dict()} lies in the {other} split")


def describe_regions(family: TaskFamily, regions: Sequence[Region]) -> str:
    """Short text for a union of regions, e.g. ``mass {0.2, 0.4}, length {1.6, 1.8}``.

    A parameter held at its nominal value alone is left out (a crippled-joint region reads ``crippled_fshin {1}``);
    regions are joined by ``∪``, in parentheses when they list several parameters.
    """
    parts = []
    for region in regions:
        shown = [
            f"{p.name} {region[p.name].describe()}"
            for p in family.parameters
            if not (isinstance(region[p.name], Choice) and region[p.name].values == (float(p.nominal),))
        ]
        text = ", ".join(shown) or "nominal"
        parts.append(f"({text})" if len(regions) > 1 and len(shown) > 1 else text)
    return " ∪ ".join(parts)


def task_table_rows(families: Sequence[TaskFamily]) -> list[tuple[str, str, str, str, str]]:
    """Rows ``(family, env id, parameter, train, test)`` describing each family's splits, for CLI and docs.

    Each cell is the union of the parameter's sets over the split's regions; which values pair up across parameters
    is in the family's description.
    """
    rows = []
    for fam in families:
        for p in fam.parameters:
            # dict.fromkeys: the same set appears once even when several regions share it (paired regions)
            train = " ∪ ".join(dict.fromkeys(r[p.name].describe() for r in fam.train))
            test = " ∪ ".join(dict.fromkeys(r[p.name].describe() for r in fam.test))
            rows.append((fam.name, fam.env_id, p.name, train, test))
    return rows
