"""A task family from any Gymnasium MuJoCo environment, without writing environment code.

:class:`MujocoFieldFamily` takes a Gymnasium id (``"Reacher-v5"``) and named physical parameters, each a
:class:`Field` that scales entries of ``MjModel`` arrays (``body_mass``, ``geom_friction``, ``dof_damping``,
``actuator_gear``, ``opt.gravity``...). Its environments are the Gymnasium env wrapped in a :class:`FieldTaskEnv`,
which fulfils the task-environment contract (see :mod:`mbmeta.envs.family`): the task goes in through
``reset(options={"task": task})`` or the settable ``task`` attribute (what ``vector_env.set_attr("task", ...)``
reaches), is written into the model as ``nominal × value`` from copies taken when the env is built (idempotent,
never compounding, the model never rebuilt), and comes back in ``info["task"]`` after every reset and step.

    from mbmeta.envs import Field, Interval, MujocoFieldFamily

    FAMILY = MujocoFieldFamily(
        "reacher_gear",
        "Reacher-v5",
        [Field("gear", "actuator_gear", description="motor gear scale (nominal 200)")],
        train={"gear": Interval(0.5, 1.5)},
        test={"gear": Interval(0.2, 0.4)},
        reward=reacher_reward,  # optional: batched torch reward equal to env.step's; None plans with the learned one
    )

Planning needs the reward as a batched torch function ``(obs, action, next_obs) -> [*S]``. A Gymnasium env has none
that mbmeta could derive (its reward reads simulator state that the observation may not hold), so the family takes
it as ``reward=``; ``mbmeta train`` checks it against ``env.step``'s reward before collecting. Without one, plan with
the model's learned reward (``--agent.exact_reward false``; the model learns a reward by default). Likewise
``terminated=`` (None: the planner assumes episodes never end early; give it for envs that terminate, e.g. Hopper).

Quantities MuJoCo derives from the scaled fields when it compiles a model (``body_subtreemass``, ``*_invweight0``)
stay nominal, as in the shipped families and MuJoCo Playground's randomisers; the dynamics read the scaled values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
import torch
from torch import Tensor

from mbmeta.envs.family import Choice, Condition, Interval, Parameter, Region, TaskFamily, check_disjoint
from mbmeta.types import RewardFn, TaskParams, TerminationFn

Index = int | str | Sequence[int | str] | None

# Name lookup of an index by the field's prefix: ``body_mass`` rows are bodies, ``dof_damping`` rows are the degrees
# of freedom of the named joints, and so on.
_OBJECTS = {
    "body_": mujoco.mjtObj.mjOBJ_BODY,
    "geom_": mujoco.mjtObj.mjOBJ_GEOM,
    "jnt_": mujoco.mjtObj.mjOBJ_JOINT,
    "dof_": mujoco.mjtObj.mjOBJ_JOINT,
    "actuator_": mujoco.mjtObj.mjOBJ_ACTUATOR,
    "site_": mujoco.mjtObj.mjOBJ_SITE,
    "tendon_": mujoco.mjtObj.mjOBJ_TENDON,
}
_JOINT_DOFS = {mujoco.mjtJoint.mjJNT_FREE: 6, mujoco.mjtJoint.mjJNT_BALL: 3}  # others (hinge, slide): 1


@dataclass(frozen=True)
class Field:
    """A task parameter that scales entries of MuJoCo model fields: each entry becomes ``nominal × value``.

    Attributes:
        name: the parameter's name (a key of every task, e.g. ``"gear"``).
        fields: ``MjModel`` attribute(s) it scales, e.g. ``"actuator_gear"``, ``("body_mass", "body_inertia")`` (a
            mass change that keeps each body's density), ``"geom_friction"``, ``"dof_damping"``, ``"opt.gravity"``.
        index: which rows of the fields: None (all), a row number, a name, or a sequence of them. Names are looked
            up by the field's prefix: bodies for ``body_*``, geoms for ``geom_*``, joints for ``jnt_*``, the named
            joints' degrees of freedom for ``dof_*``, actuators (or the joint an actuator drives) for
            ``actuator_*``, sites, tendons.
        description: one line for ``mbmeta envs`` (default: what it scales).
        minimum: smallest valid value (exclusive when ``strict``): 0, so scales must be > 0.
        strict: whether ``minimum`` itself is invalid (False allows a scale of 0, e.g. a disabled motor).
    """

    name: str
    fields: str | tuple[str, ...]
    index: Index = None
    description: str = ""
    minimum: float = 0.0
    strict: bool = True

    def __post_init__(self) -> None:
        fields = (self.fields,) if isinstance(self.fields, str) else tuple(self.fields)
        if not self.name or not fields:
            raise ValueError(f"Field needs a name and at least one model field, got {self.name!r}, {self.fields!r}")
        for name in fields:
            root = name.split(".")[0]
            if not hasattr(mujoco.MjModel, root):
                example = "e.g. 'body_mass', 'opt.gravity'"
                raise ValueError(f"Field {self.name!r}: MjModel has no field {name!r} ({example})")
        object.__setattr__(self, "fields", fields)
        if isinstance(self.index, list):
            object.__setattr__(self, "index", tuple(self.index))

    @property
    def parameter(self) -> Parameter:
        """The family parameter: a scale with nominal value 1."""
        rows = self.index if isinstance(self.index, tuple) else (self.index,)
        where = "" if self.index is None else f"[{', '.join(str(r) for r in rows)}]"
        text = self.description or f"scale of {', '.join(f'{f}{where}' for f in self.fields)}"
        return Parameter(self.name, 1.0, text, minimum=self.minimum, strict=self.strict)


def _as_value_set(value: Any, where: str) -> Choice | Interval:
    if isinstance(value, Choice | Interval):
        return value
    if isinstance(value, Sequence) and not isinstance(value, str) and value:
        return Choice(tuple(float(v) for v in value))
    raise ValueError(f"{where} must be a Choice, an Interval or a list of values, got {value!r}")


def _as_regions(split: Region | Sequence[Region], parameters: Sequence[str], what: str) -> tuple[Region, ...]:
    """A split as a tuple of regions, each giving every parameter a Choice or Interval (lists become Choices)."""
    regions = (split,) if isinstance(split, Mapping) else tuple(split)
    if not regions:
        raise ValueError(f"the {what} split needs at least one region (a dict parameter -> Choice/Interval)")
    out = []
    for region in regions:
        if not isinstance(region, Mapping) or set(region) != set(parameters):
            names = sorted(region) if isinstance(region, Mapping) else region
            raise ValueError(f"each {what} region must give exactly the parameters {list(parameters)}, got {names}")
        out.append({name: _as_value_set(region[name], f"{what}[{name!r}]") for name in parameters})
    return tuple(out)


class MujocoFieldFamily(TaskFamily):
    """A task family of a Gymnasium MuJoCo environment whose parameters scale ``MjModel`` fields.

    Args:
        name: the family's name (``mbmeta envs``, buffers, ``--loop.family`` once registered).
        env_id: a registered Gymnasium id of a ``MujocoEnv`` (e.g. ``"Reacher-v5"``, ``"Hopper-v5"``).
        fields: the varied parameters, one :class:`Field` each.
        train: the train split: a region (``{"gear": Interval(0.5, 1.5)}``) or a sequence of regions; a list of
            numbers is a :class:`Choice`.
        test: the test split, disjoint from ``train``.
        reward: exact reward ``(obs [*S, O], action [*S, A], next_obs [*S, O]) -> [*S]`` in torch, equal to
            ``env.step``'s; None: none (plan with the learned reward, ``agent.exact_reward: false``).
        terminated: exact termination ``(obs, action, next_obs) -> [*S]`` bool; None: never terminates.
        description: one line for ``mbmeta envs``.
        env_kwargs: fixed ``gymnasium.make`` arguments (e.g. ``{"reward_control_weight": 0.05}``).
        episode_steps: episode length; default: the env's registered ``max_episode_steps`` (1000 if none).
        conditions: named test sets for an evaluation protocol (see :class:`~mbmeta.envs.family.Condition`).
        validation: an optional validation split, disjoint from both (tasks outside the train range to choose
            settings on without the test split; ``mbmeta evaluate --split validation``).

    Raises:
        ValueError: an unknown env id, a bad field, a split that names other parameters, or test (validation) tasks
            inside the train split (the train or test split).
    """

    def __init__(
        self,
        name: str,
        env_id: str,
        fields: Sequence[Field],
        train: Region | Sequence[Region],
        test: Region | Sequence[Region],
        *,
        reward: RewardFn | None = None,
        terminated: TerminationFn | None = None,
        description: str = "",
        env_kwargs: Mapping[str, Any] | None = None,
        episode_steps: int | None = None,
        conditions: Sequence[Condition] = (),
        validation: Region | Sequence[Region] | None = None,
    ) -> None:
        try:
            spec = gym.spec(env_id)
        except gym.error.Error as err:
            raise ValueError(f"family {name!r}: unknown Gymnasium env id {env_id!r} ({err})") from err
        fields = tuple(fields)
        if not fields or not all(isinstance(f, Field) for f in fields):
            raise ValueError(f"family {name!r}: fields must be a non-empty list of Field, got {fields!r}")
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            raise ValueError(f"family {name!r}: repeated parameter names {names}")
        self.name = name
        self.env_id = env_id
        self.bare_env_id = env_id
        self.fields = fields
        self.parameters = tuple(f.parameter for f in fields)
        self.train = _as_regions(train, names, "train")
        self.test = _as_regions(test, names, "test")
        self.validation = () if validation is None else _as_regions(validation, names, "validation")
        self.conditions = tuple(conditions)
        self.description = description or f"{env_id} with {', '.join(names)} varied"
        self.env_kwargs = dict(env_kwargs or {})
        self.episode_steps = int(episode_steps or spec.max_episode_steps or 1000)
        self._reward = reward
        self._terminated = terminated
        nominal = self.nominal().as_dict()
        for region in (*self.train, *self.test, *self.validation):  # every value a split can produce is a valid one
            for n in names:
                for value in _values(region[n]):
                    self.validate({**nominal, n: value})
        check_disjoint(self)

    def make_env(self, **kwargs: Any) -> gym.Env:
        """``gymnasium.make(env_id, **env_kwargs, **kwargs)`` wrapped in a :class:`FieldTaskEnv`.

        Args:
            **kwargs: ``gymnasium.make`` arguments (``render_mode``, ``max_episode_steps``...) and ``task``, the
                initial task (nominal if absent).
        """
        task = kwargs.pop("task", None)
        env = gym.make(self.env_id, **{**self.env_kwargs, **kwargs})
        return FieldTaskEnv(env, self, task)

    def reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """The ``reward`` given at construction: ``[*S, O], [*S, A], [*S, O] -> [*S]``.

        Raises:
            ValueError: the family has none (plan with the learned reward: ``agent.exact_reward: false``).
        """
        if self._reward is None:
            raise ValueError(
                f"family {self.name!r} has no exact reward: give MujocoFieldFamily(reward=...) or plan with the "
                "learned reward (agent.exact_reward false)"
            )
        return self._reward(obs, action, next_obs)

    def terminated(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """The ``terminated`` given at construction, or never (``[*S]`` all False)."""
        if self._terminated is None:
            return torch.zeros(next_obs.shape[:-1], dtype=torch.bool, device=next_obs.device)
        return self._terminated(obs, action, next_obs)


def _values(value_set: Choice | Interval) -> tuple[float, ...]:
    return value_set.values if isinstance(value_set, Choice) else (value_set.low, value_set.high)


class _Target:
    """One model array a family writes: its nominal copy and, per parameter, the entries that parameter scales."""

    def __init__(self, owner: Any, attr: str, nominal: np.ndarray | float) -> None:
        self.owner, self.attr, self.nominal = owner, attr, nominal
        self.scaled_by: list[tuple[str, Any]] = []  # (parameter, index into the array or Ellipsis)

    def write(self, task: TaskParams) -> None:
        if isinstance(self.nominal, float):
            value = self.nominal
            for name, _ in self.scaled_by:
                value *= task[name]
            setattr(self.owner, self.attr, value)
            return
        array = self.nominal.copy()
        for name, index in self.scaled_by:
            array[index] *= task[name]
        getattr(self.owner, self.attr)[...] = array


def _rows(mj_model: mujoco.MjModel, field: str, index: Index, size: int, parameter: str) -> Any:
    """The rows of a ``size``-row model array that ``index`` names (Ellipsis for all)."""
    if index is None:
        return Ellipsis
    items = [index] if isinstance(index, int | str) else list(index)
    rows: list[int] = []
    for item in items:
        if isinstance(item, int | np.integer):
            rows.append(int(item))
        else:
            rows += _named_rows(mj_model, field, str(item), parameter)
    bad = [r for r in rows if not 0 <= r < size]
    if bad:
        raise ValueError(f"Field {parameter!r}: rows {bad} are out of range for {field} ({size} rows)")
    return np.array(sorted(set(rows)), dtype=int)


def _named_rows(mj_model: mujoco.MjModel, field: str, name: str, parameter: str) -> list[int]:
    prefix = next((p for p in _OBJECTS if field.startswith(p)), None)
    if prefix is None:
        raise ValueError(f"Field {parameter!r}: {field} rows cannot be named ({name!r}); give row numbers")
    found = mujoco.mj_name2id(mj_model, _OBJECTS[prefix], name)
    if prefix == "dof_" and found >= 0:
        start = int(mj_model.jnt_dofadr[found])
        return list(range(start, start + _JOINT_DOFS.get(int(mj_model.jnt_type[found]), 1)))
    if prefix == "actuator_" and found < 0:  # an actuator may be unnamed: find it by the joint it drives
        joint = mujoco.mj_name2id(mj_model, mujoco.mjtObj.mjOBJ_JOINT, name)
        driven = (mj_model.actuator_trntype == mujoco.mjtTrn.mjTRN_JOINT) & (mj_model.actuator_trnid[:, 0] == joint)
        if joint >= 0 and driven.any():
            return np.flatnonzero(driven).tolist()
    if found < 0:
        kind = prefix.rstrip("_").replace("jnt", "joint").replace("dof", "joint")
        raise ValueError(f"Field {parameter!r}: the model has no {kind} named {name!r} (for {field})")
    return [found]


def model_targets(mj_model: mujoco.MjModel, fields: Sequence[Field]) -> list[_Target]:
    """Resolve the fields' arrays and rows in a model, copying each array's nominal values once.

    Raises:
        ValueError: a field that is no float array (or float) of the model, or rows it does not have.
    """
    targets: dict[str, _Target] = {}
    for field in fields:
        for path in field.fields:
            if path not in targets:
                *parents, attr = path.split(".")
                owner = mj_model
                for part in parents:
                    owner = getattr(owner, part)
                value = getattr(owner, attr)
                if isinstance(value, float):
                    nominal: np.ndarray | float = float(value)
                elif isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size:
                    nominal = value.copy()
                else:
                    raise ValueError(f"Field {field.name!r}: {path} is not a float array of this model")
                targets[path] = _Target(owner, attr, nominal)
            target = targets[path]
            if isinstance(target.nominal, float):
                if field.index is not None:
                    raise ValueError(f"Field {field.name!r}: {path} is a number; it has no rows to index")
                target.scaled_by.append((field.name, None))
            else:
                size = target.nominal.shape[0]
                target.scaled_by.append((field.name, _rows(mj_model, path, field.index, size, field.name)))
    return list(targets.values())


class FieldTaskEnv(gym.Wrapper):
    """A Gymnasium MuJoCo env that takes, applies and reports a :class:`MujocoFieldFamily` task.

    Args:
        env: the env (``env.unwrapped`` a ``MujocoEnv`` with ``model``).
        family: the family whose fields the tasks scale.
        task: the initial task (nominal if None).
    """

    def __init__(self, env: gym.Env, family: MujocoFieldFamily, task: TaskParams | Mapping[str, float] | None) -> None:
        super().__init__(env)
        mj_model = getattr(env.unwrapped, "model", None)
        if not isinstance(mj_model, mujoco.MjModel):
            raise ValueError(f"family {family.name!r}: {family.env_id} is not a MuJoCo env (no MjModel at .model)")
        self.family = family
        self._targets = model_targets(mj_model, family.fields)
        self._task = family.nominal()
        self.task = family.nominal() if task is None else task

    @property
    def task(self) -> TaskParams:
        """The current task (written into the MuJoCo model)."""
        return self._task

    @task.setter
    def task(self, task: TaskParams | Mapping[str, float]) -> None:
        task = self.family.validate(task)
        for target in self._targets:
            target.write(task)
        self._task = task

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset, first applying ``options["task"]`` if given; ``info["task"]`` reports the task."""
        if options and options.get("task") is not None:
            self.task = options["task"]
            options = {k: v for k, v in options.items() if k != "task"} or None
        obs, info = self.env.reset(seed=seed, options=options)
        info["task"] = self._task.as_dict()
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        """Step the env; ``info["task"]`` reports the task."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["task"] = self._task.as_dict()
        return obs, reward, terminated, truncated, info
