"""Value types shared by every layer, and the shape letters used in all docstrings.

Shape letters (batch-first; used in every docstring of the package):

- ``B``: batch (environments, or rows of a training batch)
- ``K``: context transitions (what a model adapts on)
- ``M``: target transitions (what a loss is computed on)
- ``N``: candidate action sequences of a planner
- ``P``: particles per candidate
- ``H``: planning horizon
- ``E``: ensemble members (the first dimension when present)
- ``O``, ``A``, ``Z``, ``T``: observation, action, context-latent and task-parameter sizes
- ``*S``: any further leading dimensions

Per-step scalars (reward, terminated) are ``[B]`` with no trailing 1. All tensors are float32 (``terminated``
is bool) and live on the device of whatever produced them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, ValuesView
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol, runtime_checkable

import numpy as np
from torch import Tensor

Split = Literal["train", "test", "validation"]
"""Which part of a task family: ``train`` tasks (meta-training), the disjoint ``test`` tasks, or the optional
``validation`` tasks (outside the train range, disjoint from test: for choosing settings that must extrapolate)."""


class TaskPairs(tuple[tuple[str, float], ...]):
    """The ``(name, value)`` pairs of a :class:`TaskParams`, in parameter order (``task.values``).

    A tuple, as ``TaskParams.values`` has always been; calling it (``task.values()``) gives the mapping's values view,
    as for a ``dict``, so code written for either reading works.
    """

    __slots__ = ()

    def __call__(self) -> ValuesView[float]:
        """The parameter values in order (``Mapping.values()``)."""
        return ValuesView(dict(self))


@dataclass(frozen=True, eq=False)
class TaskParams(Mapping[str, float]):
    """The physical parameters of one task: a frozen, hashable, read-only mapping ``name -> value``.

    Values are scale factors (or indices) keyed by parameter name, in the family's parameter order. Everything a
    read-only mapping offers works: ``task["mass"]``, ``task.get("mass", 1.0)``, ``"mass" in task``, ``len(task)``,
    ``list(task)`` (the names), ``dict(task)``, ``{**task}``, ``task.items()``, ``task.values()``; a task equals any
    mapping with the same items (``task == {"mass": 1.5, "length": 0.5}``) and is hashable (a dict key or set
    member).

    Attributes:
        values: the ``(name, value)`` pairs in parameter order (a tuple; ``values()`` is the mapping's values view).
    """

    values: TaskPairs

    def __init__(self, values: Iterable[tuple[str, float]] | Mapping[str, float]) -> None:
        items = values.items() if isinstance(values, Mapping) else values
        pairs = TaskPairs((str(k), float(v)) for k, v in items)
        names = [k for k, _ in pairs]
        if len(set(names)) != len(names):
            raise ValueError(f"TaskParams: repeated parameter names in {names}")
        object.__setattr__(self, "values", pairs)

    @classmethod
    def from_dict(cls, values: Mapping[str, float]) -> TaskParams:
        """Build from a mapping (a ``dict`` or another ``TaskParams``); values are converted to float."""
        return cls(values.items())

    def as_dict(self) -> dict[str, float]:
        """The parameters as a plain dict (what ``info["task"]`` carries)."""
        return dict(self.values)

    def as_array(self) -> np.ndarray:
        """``[T]`` float32 vector in parameter order (the oracle's context)."""
        return np.array([v for _, v in self.values], dtype=np.float32)

    def __getitem__(self, name: str) -> float:
        for key, value in self.values:
            if key == name:
                return value
        raise KeyError(f"task has no parameter {name!r}; it has {[k for k, _ in self.values]}")

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __contains__(self, name: object) -> bool:
        return any(key == name for key, _ in self.values)

    def __eq__(self, other: object) -> bool:
        # Mapping equality (the items, not their order), also against a dict; the hash agrees with it.
        if isinstance(other, Mapping):
            return self.as_dict() == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(frozenset(self.values))

    def __repr__(self) -> str:
        return f"TaskParams({self.as_dict()!r})"

    def __reduce__(self) -> tuple[type[TaskParams], tuple[tuple[tuple[str, float], ...]]]:
        # Pickled (to spawned workers, by set_attr) as plain pairs: no dependence on TaskPairs' pickling.
        return (TaskParams, (tuple(self.values),))


class Transition(NamedTuple):
    """One or more environment transitions.

    A NamedTuple (not a dataclass) so that Lightning moves it between devices as a whole.

    Attributes:
        obs: ``[..., O]`` observation before the step.
        action: ``[..., A]`` action taken.
        next_obs: ``[..., O]`` observation after the step.
        reward: ``[...]`` reward returned by the step.
        terminated: ``[...]`` bool, the step ended the episode in a terminal state (not a time limit).
    """

    obs: Tensor
    action: Tensor
    next_obs: Tensor
    reward: Tensor
    terminated: Tensor


class MetaBatch(NamedTuple):
    """A batch of trajectory segments: K context transitions followed by M targets from the same episode.

    Attributes:
        context: fields ``[B, K, ...]``: what the model adapts on.
        target: fields ``[B, M, ...]``: what the loss is computed on (the M transitions right after the context).
        task: ``[B, T]`` the true task parameters of each segment's episode (used only by the oracle).
        context_mask: ``[B, K]`` bool, True where a context slot holds a real transition (windows near an episode's
            start are left-padded); None when every slot is real.
    """

    context: Transition
    target: Transition
    task: Tensor
    context_mask: Tensor | None = None


class Prediction(NamedTuple):
    """A model's one-step prediction, per ensemble member.

    Attributes:
        mean: ``[E, B, *S, O]`` mean of the predicted next observation (in raw observation units).
        var: ``[E, B, *S, O]`` predictive variance (zeros for a deterministic model).
        reward: ``[E, B, *S]`` learned reward prediction, or None when the model learns no reward.
    """

    mean: Tensor
    var: Tensor
    reward: Tensor | None


class PlanResult(NamedTuple):
    """What a planner returns.

    Attributes:
        actions: ``[B, H, A]`` the planned action sequence (first action is executed, the rest warm-starts).
        returns: ``[B]`` the objective's value of the returned plan's population summary (e.g. mean elite
            return for CEM): a diagnostic, not a promise about the returned mean sequence.
        rows: number of action sequences the objective evaluated in this call (``N × iterations``
            summed over iterations, per batch entry); the planner-cost figure benchmarks report.
    """

    actions: Tensor
    returns: Tensor
    rows: int


Objective = Callable[[Tensor], Tensor]
"""``objective(actions [B, N, H, A]) -> returns [B, N]``: higher is better."""

RewardFn = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``reward(obs [*S, O], action [*S, A], next_obs [*S, O]) -> [*S]``."""

TerminationFn = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``terminated(obs [*S, O], action [*S, A], next_obs [*S, O]) -> [*S]`` bool."""

ValueFn = Callable[[Tensor], Tensor]
"""``value(obs [*S, O]) -> [*S]``: what a state at the end of the planning horizon is worth (higher is better)."""


@runtime_checkable
class AdaptedDynamics(Protocol):
    """A model adapted to B environments' contexts; cheap to call ``N × H`` times inside a planner.

    Optional capability, declared (a class attribute), never discovered from the signature:

    - ``can_skip_reward = True``: ``__call__`` also takes ``with_reward: bool = True``, and with
      ``with_reward=False`` it may skip its learned reward (``Prediction.reward`` None; mean and var unchanged).
      A planner that scores with an exact reward then asks for it. Without the attribute the model is called with
      ``(obs, action)`` only.

    Attributes:
        ensemble_size: E, the number of ensemble members (1 for a single network).
    """

    ensemble_size: int

    def __call__(self, obs: Tensor, action: Tensor) -> Prediction:
        """Predict one step for every member.

        Args:
            obs: ``[E, B, *S, O]``: row ``[e, b, ...]`` is predicted by member ``e`` under environment ``b``'s
                adaptation. Pass ``obs.expand(E, ...)`` to ask every member about the same rows.
            action: ``[E, B, *S, A]``.

        Returns:
            Prediction with mean/var ``[E, B, *S, O]`` and reward ``[E, B, *S]`` or None.
        """
        ...


@runtime_checkable
class KnownPhysics(Protocol):
    """Physics a model is told instead of learning it: part of the next observation, computed from the rest.

    A ``torch.nn.Module`` (its parameters, if any, are fitted with the model's networks through :meth:`loss`, and
    saved in its checkpoint). Named by import path in a model's ``known_physics`` argument.

    Optional capability, declared (a class attribute), never discovered from the signature:

    - ``adapts = True``: it also has ``adapt(context: Transition, mask: Tensor | None) -> Tensor``, called with the
      model's context (raw fields ``[B, K, ...]``, mask ``[B, K]``) whenever the model adapts, returning a state
      ``[B, P]`` that each :meth:`complete` of those B environments receives as ``state`` (None otherwise).
    - ``adapts_with_prediction = True`` (with ``adapts``): ``adapt`` also receives ``predict``, a function
      ``(obs [B, K, O], action [B, K, A]) -> [B, K, O]`` giving the network's ensemble-mean next observation before
      :meth:`complete` (the model's own adaptation applied, the physics' not), so that the state can correct what the
      network predicts (e.g. a gain on the arm's response fitted to the context).
    - ``uses_action = True``: :meth:`complete` and :meth:`loss` also receive the action, as the keyword ``action``
      (``[*S, A]`` raw, beside ``obs``), e.g. to integrate an arm's servos.

    Attributes:
        computed: the observation entries :meth:`complete` computes; the network's prediction is kept for the rest,
            and the predicted variance of these entries is zero.
    """

    computed: tuple[int, ...]

    def complete(self, obs: Tensor, next_obs: Tensor, state: Tensor | None = None) -> Tensor:
        """``obs [*S, O]`` and the network's next observation ``[*S, O]`` -> the next observation ``[*S, O]``.

        With ``state [B, P]`` (an adapting physics, see above), ``obs`` is ``[E, B, *S, O]``: its second dimension
        is the B environments the state was adapted to.
        """
        ...

    def loss(self, obs: Tensor, next_obs: Tensor) -> Tensor:
        """Scalar loss of the physics' own parameters on true transitions ``obs, next_obs [*S, O]``.

        In training, ``[B, M, O]``: B segments of M consecutive transitions, each from one environment.
        """
        ...


@runtime_checkable
class MetaDynamics(Protocol):
    """A learned dynamics (and reward) model that adapts to a task from a short context."""

    def adapt(self, context: Transition, mask: Tensor | None = None, task: Tensor | None = None) -> AdaptedDynamics:
        """Adapt to each of B environments' recent transitions (once per env step).

        Args:
            context: fields ``[B, K, ...]``, oldest first.
            mask: ``[B, K]`` bool, True where a context slot holds a real transition (left-padded windows at the
                start of an episode). None means all valid.
            task: ``[B, T]`` true task parameters; used only by the oracle adapter, ignored otherwise.

        Returns:
            The adapted model.
        """
        ...
