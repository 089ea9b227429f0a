"""Collecting episodes from a Gymnasium vector environment into an :class:`~mbmeta.data.buffer.EpisodeBuffer`.

Each sub-environment runs its own task: a task is set with ``vector_env.set_attr("task", [...])`` before the
sub-environment resets (see :mod:`mbmeta.envs.task_env`), and every recorded step is checked against the task the
environment reports in ``info["task"]``, so an episode can never mix tasks.

Autoreset: the vector env is built with ``AutoresetMode.NEXT_STEP`` (Gymnasium's default, and the cheapest: the
reset costs no extra call). After a sub-environment's episode ends at step ``t`` (``terminated or truncated``), its
next ``step`` call ignores the action and only resets it, returning the new episode's first observation with
reward 0. That reset step is not a transition: it is never recorded, it is marked ``valid=False`` for the
policy's ``observe_tensor``, and the policy is told to forget that sub-environment both when its episode ends and
right after the reset step (:meth:`Policy.reset_envs`). The next episode's task is set between the two calls, so
the reset applies it. After every reset and step an ``on_step`` hook may look at the vector env (to render).

Policies: a :class:`~mbmeta.control.policy.Policy` (tensors in and out, declared capabilities, no-op hooks an MPC
agent overrides to keep its context window and warm start), or a plain callable ``fn(obs) -> actions`` on NumPy
arrays (wrapped in a :class:`~mbmeta.control.policy.CallablePolicy`). A policy that declares ``lockstep`` is run in
synchronised waves (all sub-environments start together; the wave ends when all have finished).

The environment boundary: each step's observations are converted once, into one float32 array (what the buffer
records) and one float32 tensor on the policy's device sharing it where the device allows (what the policy sees;
the next step reuses it); they are checked for NaN/inf there. The policy's actions stay a tensor for its hooks and
become a NumPy array once, for ``env.step`` and the buffer; their shape and finiteness are checked there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from torch import Tensor

from mbmeta.control.policy import CallablePolicy, Policy, as_policy
from mbmeta.control.vector_envs import family_env_fns, make_vector_env
from mbmeta.data.buffer import EpisodeBuffer, TaskLike
from mbmeta.data.recorder import EpisodeRecorder
from mbmeta.envs.contract import CONTRACT, check_family_env
from mbmeta.envs.family import TaskFamily, TaskParams
from mbmeta.types import Split, Transition

__all__ = [
    "CallablePolicy",
    "Collection",
    "EpisodeStats",
    "Policy",
    "RandomPolicy",
    "collect_episodes",
    "family_env_fns",
    "make_vector_env",
]


class RandomPolicy(Policy):
    """Uniformly random actions within a Box action space (standard normal on unbounded dimensions).

    Stateless; its randomness comes from its own ``np.random.Generator``, so its actions do not depend on the device
    or on the observations' values.

    Args:
        action_space: the single-environment ``Box`` action space.
        seed: seeds this policy's own ``np.random.Generator``.
        scale: in (0, 1]: actions are uniform within ``scale`` of each half-range about the centre of the bounds
            (normal with std ``scale`` on unbounded dimensions); 1 is the whole box.

    Raises:
        TypeError: not a Box action space.
        ValueError: ``scale`` outside (0, 1].
    """

    def __init__(self, action_space: gym.spaces.Box, seed: int | None = 0, scale: float = 1.0) -> None:
        if not isinstance(action_space, gym.spaces.Box):
            raise TypeError(f"RandomPolicy needs a Box action space, got {type(action_space).__name__}")
        if not 0 < scale <= 1:
            raise ValueError(f"RandomPolicy: scale must be in (0, 1], got {scale!r}")
        self.scale = float(scale)
        self.low = np.asarray(action_space.low, dtype=np.float64).reshape(-1)
        self.high = np.asarray(action_space.high, dtype=np.float64).reshape(-1)
        self.bounded = np.isfinite(self.low) & np.isfinite(self.high)
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """``[B, A]`` float32 random actions for ``obs [B, O]`` (only B is used)."""
        batch = np.asarray(obs).shape[0]
        u = self.rng.uniform(size=(batch, self.low.shape[0]))
        normal = self.rng.standard_normal(size=(batch, self.low.shape[0]))
        low, high = np.where(self.bounded, self.low, 0.0), np.where(self.bounded, self.high, 0.0)
        if self.scale != 1.0:  # shrink the box about its centre (scale 1 keeps the original stream bit for bit)
            centre, half = (low + high) / 2, self.scale * (high - low) / 2
            low, high, normal = centre - half, centre + half, self.scale * normal
        return np.where(self.bounded, low + u * (high - low), normal).astype(np.float32)

    def act_tensor(self, obs: Tensor, task: Tensor | None = None) -> Tensor:
        """``[B, A]`` float32 random actions (CPU tensor) for ``obs [B, O]`` (only B is used)."""
        return torch.from_numpy(self.act(np.empty((obs.shape[0], 0))))


class EpisodeStats(NamedTuple):
    """Summary of one collected episode.

    Attributes:
        episode: index of the episode in the buffer.
        launch: order in which the episode was started (task ``j`` of the task list goes to launch ``j``).
        env_index: sub-environment that ran it.
        task: the task parameters.
        episode_return: sum of rewards.
        length: number of transitions.
        terminated: ended in a terminal state (False: truncated by the time limit).
        success: whether the episode reached the family's goal (``TaskFamily.success``); None where the family
            defines none or no family was given.
        measures: the family's numbers explaining the outcome (``TaskFamily.measures``); empty without a family.
    """

    episode: int
    launch: int
    env_index: int
    task: dict[str, float]
    episode_return: float
    length: int
    terminated: bool
    success: bool | None = None
    measures: Mapping[str, float] = MappingProxyType({})


class Collection(NamedTuple):
    """What :func:`collect_episodes` returns: the buffer written to and one :class:`EpisodeStats` per episode."""

    buffer: EpisodeBuffer
    episodes: list[EpisodeStats]


class _TaskSource:
    """Hands out the task of the j-th launched episode."""

    def __init__(
        self,
        tasks: Sequence[TaskLike] | Callable[[np.random.Generator], TaskLike] | None,
        family: TaskFamily | None,
        split: Split,
        rng: np.random.Generator,
    ) -> None:
        if tasks is None and family is None:
            raise ValueError("give tasks (a list or a sampler) or a family to sample tasks from")
        if isinstance(tasks, Sequence) and len(tasks) == 0:
            raise ValueError("tasks is an empty list")
        self.tasks, self.family, self.split, self.rng = tasks, family, split, rng

    def __call__(self, launch: int) -> TaskParams:
        if self.tasks is None:
            assert self.family is not None
            task: TaskLike = self.family.sample(self.rng, 1, self.split)[0]
        elif callable(self.tasks):
            task = self.tasks(self.rng)
        else:
            task = self.tasks[launch % len(self.tasks)]
        if self.family is not None:
            return self.family.validate(task)
        return task if isinstance(task, TaskParams) else TaskParams.from_dict(task)


def _reported_tasks(info: dict[str, Any], names: tuple[str, ...], num_envs: int) -> np.ndarray | None:
    """``[B, T]`` tasks the sub-environments report in ``info["task"]`` (NaN where absent), or None if none do."""
    reported = info.get("task")
    if not isinstance(reported, dict):
        return None
    out = np.full((num_envs, len(names)), np.nan)
    for j, name in enumerate(names):
        if name in reported:
            values = np.asarray(reported[name], dtype=np.float64)
            present = np.asarray(reported.get(f"_{name}", np.ones(num_envs, bool)), dtype=bool)
            out[present, j] = values[present]
    return out


def collect_episodes(
    policy: Policy | Callable[[np.ndarray], Any],
    num_episodes: int,
    *,
    envs: VectorEnv | Sequence[Callable[[], gym.Env]] | None = None,
    family: TaskFamily | str | None = None,
    tasks: Sequence[TaskLike] | Callable[[np.random.Generator], TaskLike] | None = None,
    split: Split = "train",
    num_envs: int = 1,
    vectorization: Literal["sync", "async"] = "sync",
    env_kwargs: dict[str, Any] | None = None,
    buffer: EpisodeBuffer | None = None,
    seed: int = 0,
    lockstep: bool | None = None,
    pass_task: bool = False,
    on_episode: Callable[[EpisodeStats], None] | None = None,
    on_step: Callable[[VectorEnv], None] | None = None,
    min_transitions: int = 0,
    under_way: Literal["finish", "drop"] = "finish",
) -> Collection:
    """Run a policy in parallel environments, each with its own task, until ``num_episodes`` episodes complete.

    Exactly ``num_episodes`` episodes are started (episode ``j`` gets task ``j``), more with ``min_transitions``;
    sub-environments with nothing left to run keep stepping but are not recorded. Episodes enter the buffer in the
    order they finish.
    Deterministic given ``seed`` (and a deterministic policy): sub-environment ``i`` is reset with seed
    ``seed + i`` once, task sampling uses its own generator seeded from ``seed``.

    Args:
        policy: a :class:`~mbmeta.control.policy.Policy`, or a plain callable ``fn(obs [B, O]) -> [B, A]`` on
            float32 NumPy arrays.
        num_episodes: number of complete episodes to record (>= 1).
        envs: a vector env in ``NEXT_STEP`` autoreset mode (not closed here), or a list of env constructors,
            or None to build ``num_envs`` environments of ``family``.
        family: task family (instance or registered name): builds the environments when ``envs`` is None,
            samples tasks when ``tasks`` is None, validates tasks, and names the buffer's metadata.
        tasks: list of tasks (cycled: episode ``j`` gets ``tasks[j % len(tasks)]``), or a sampler
            ``rng -> task``, or None to sample from ``family``'s ``split``.
        split: the family split to sample from when ``tasks`` is None.
        num_envs: B when building environments from ``family``.
        vectorization: ``"sync"`` or ``"async"`` (spawned worker processes) when building environments.
        env_kwargs: keyword arguments for ``family.make_env`` (e.g. ``render_mode``, ``max_episode_steps``).
        buffer: where episodes are appended; a new buffer when None.
        seed: seeds the environments' resets and the task sampling.
        lockstep: run episodes in synchronised waves; None takes the policy's declared ``lockstep``.
        pass_task: give the policy the true task parameters ``[B, T]`` (oracle models only; the policy must
            declare ``takes_task``).
        on_episode: called with each finished episode's stats (e.g. for logging).
        on_step: called with the vector env after every reset and every step (e.g. to render a frame).
        min_transitions: after the ``num_episodes`` episodes, keep starting new ones (each on the next task) while
            the transitions recorded so far plus those of the episodes under way are fewer than this; every started
            episode runs to its end, so the collection holds at least this many transitions (a budget in steps,
            where early failures end episodes). 0: exactly ``num_episodes``.
        under_way: with ``min_transitions``, what ends the collection. ``finish``: no episode starts once the
            recorded and under-way transitions reach the budget, and those under way run to their end (up to one
            episode per environment over the budget). ``drop`` (CaDM's sampler): every environment whose episode
            ends starts another until the finished episodes number at least ``num_episodes`` and hold at least
            ``min_transitions`` transitions; then the collection ends at once and the episodes under way are
            discarded (over the budget only by episodes ending on the same step).

    Returns:
        The buffer and one :class:`EpisodeStats` per episode, in the order they were added.

    Raises:
        TypeError: a policy that is neither a :class:`~mbmeta.control.policy.Policy` nor a callable.
        ValueError: bad arguments, an environment returning NaN/inf observations, or a policy returning actions of
            the wrong shape or with NaN/inf.
        RuntimeError: an environment reports a different task than the one assigned (an episode would mix tasks).
    """
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
    if not isinstance(min_transitions, int) or isinstance(min_transitions, bool) or min_transitions < 0:
        raise ValueError(f"min_transitions must be an int >= 0, got {min_transitions!r}")
    if under_way not in ("finish", "drop"):
        raise ValueError(f"under_way must be 'finish' or 'drop', got {under_way!r}")
    if under_way == "drop" and not min_transitions:
        raise ValueError("under_way='drop' ends a collection by its budget in steps: give min_transitions > 0")
    fam: TaskFamily | None
    if isinstance(family, str):
        from mbmeta.envs import get_family

        fam = get_family(family)
    else:
        fam = family
    policy = as_policy(policy)
    if pass_task and not policy.takes_task:
        raise ValueError(
            f"pass_task=True but the policy ({type(policy).__name__}) does not take the task: it must declare "
            "takes_task (a callable: CallablePolicy(fn, takes_task=True))"
        )
    if lockstep is None:
        lockstep = policy.lockstep

    own_envs = not isinstance(envs, VectorEnv)
    if envs is None:
        if fam is None:
            raise ValueError("give envs (a vector env or env constructors) or a family to build them from")
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        check_family_env(fam, exact_reward=False)  # once per family and process: takes, applies, reports its task
        vec = make_vector_env(family_env_fns(fam, num_envs, **(env_kwargs or {})), vectorization)
    elif isinstance(envs, VectorEnv):
        vec = envs
        mode = vec.metadata.get("autoreset_mode")
        if mode != AutoresetMode.NEXT_STEP:
            raise ValueError(f"collect_episodes needs a vector env with AutoresetMode.NEXT_STEP, got {mode}")
    else:
        vec = make_vector_env(envs, vectorization)
    try:
        return _collect(
            vec,
            policy,
            num_episodes,
            _TaskSource(tasks, fam, split, np.random.default_rng([seed, 1])),
            fam,
            buffer,
            seed,
            lockstep,
            pass_task,
            on_episode,
            on_step,
            min_transitions,
            under_way == "drop",
        )
    finally:
        if own_envs:
            vec.close()


class _Boundary:
    """Converts at the environment boundary, once per value, and validates there.

    Args:
        device: the policy's device.
        action_shape: ``(B, A)``, what every step's actions must be.
    """

    def __init__(self, device: torch.device | str, action_shape: tuple[int, ...]) -> None:
        self.device = torch.device(device)
        self.action_shape = action_shape

    def tensor(self, array: np.ndarray) -> Tensor:
        """A NumPy array as a tensor on the device (sharing its memory on the CPU)."""
        return torch.from_numpy(array).to(self.device)

    def observations(self, obs: Any) -> tuple[np.ndarray, Tensor]:
        """Observations ``[B, O]`` from the env as float32 NumPy (for the buffer) and tensor (for the policy).

        Raises:
            ValueError: NaN or inf in an observation (names the sub-environments).
        """
        obs32 = np.asarray(obs, dtype=np.float32)
        if not np.isfinite(obs32).all():
            raise ValueError(f"sub-environment(s) {_non_finite_rows(obs32)} returned observations with NaN or inf")
        return obs32, self.tensor(obs32)

    def actions(self, action: Any) -> tuple[np.ndarray, Tensor]:
        """The policy's actions as float32 NumPy (for ``env.step`` and the buffer) and tensor (for its hooks).

        Raises:
            TypeError: the policy returned no tensor.
            ValueError: wrong shape, or NaN/inf.
        """
        if not isinstance(action, Tensor):
            raise TypeError(f"policy.act_tensor must return a Tensor of shape {self.action_shape}, got {type(action)}")
        action = action.detach().to(self.device, torch.float32)
        array = action.cpu().numpy()
        if array.shape != self.action_shape:
            raise ValueError(f"policy returned actions of shape {array.shape}, expected {self.action_shape}")
        if not np.isfinite(array).all():
            raise ValueError(f"policy returned NaN or inf actions for sub-environment(s) {_non_finite_rows(array)}")
        return array, action


def _non_finite_rows(array: np.ndarray) -> dict[int, list[int]]:
    """``{row: [entries with NaN/inf]}`` of a ``[B, D]`` array (for one-line error messages)."""
    bad = ~np.isfinite(array.reshape(len(array), -1))
    return {int(i): np.flatnonzero(bad[i]).tolist() for i in np.flatnonzero(bad.any(axis=1))}


def _collect(
    vec: VectorEnv,
    policy: Policy,
    num_episodes: int,
    task_source: _TaskSource,
    family: TaskFamily | None,
    buffer: EpisodeBuffer | None,
    seed: int,
    lockstep: bool,
    pass_task: bool,
    on_episode: Callable[[EpisodeStats], None] | None,
    on_step: Callable[[VectorEnv], None] | None,
    min_transitions: int = 0,
    drop_under_way: bool = False,
) -> Collection:
    num_envs = vec.num_envs
    boundary = _Boundary(policy.device, (num_envs, *vec.single_action_space.shape))
    if buffer is None:
        buffer = EpisodeBuffer()
    if family is not None:
        for attr, value in (("family", family.name), ("env_id", family.env_id)):
            current = getattr(buffer, attr)
            if current is None:
                setattr(buffer, attr, value)
            elif current != value:
                raise ValueError(f"buffer holds {attr} {current!r} but this collection uses {value!r}")
    recorder = EpisodeRecorder(buffer, num_envs)
    start_transitions = buffer.num_transitions

    launched = 0
    env_launch = np.full(num_envs, -1)  # launch number of each env's episode; -1: idle (not recorded)
    env_task = _AssignedTasks(num_envs)
    returns = np.zeros(num_envs)
    stats: list[EpisodeStats] = []

    def assign(i: int) -> None:
        nonlocal launched
        env_task[i] = task_source(launched)
        env_launch[i] = launched
        recorder.begin(i, env_task[i])
        returns[i] = 0.0
        launched += 1

    def push_tasks() -> None:
        # Idle envs keep whatever task they have; set_attr needs a value for every env, and re-applying an
        # unchanged task is a no-op by design (apply_task writes nominal x scale).
        tasks = env_task.tasks
        current = vec.get_attr("task") if any(t is None for t in tasks) else None
        vec.set_attr("task", [t if t is not None else current[i] for i, t in enumerate(tasks)])  # type: ignore[index]

    def short_of_transitions() -> bool:
        """Whether the recorded transitions plus those of the episodes under way fall short of min_transitions."""
        under_way = sum(recorder.pending(i) for i in range(num_envs) if env_launch[i] >= 0)
        return buffer.num_transitions - start_transitions + under_way < min_transitions

    def budget_met() -> bool:
        """The drop rule's end: enough finished episodes holding enough transitions."""
        return len(stats) >= num_episodes and buffer.num_transitions - start_transitions >= min_transitions

    def start_another() -> bool:
        """Whether an environment whose episode just ended starts a new one (continuous collection)."""
        if drop_under_way:
            return not budget_met()
        return launched < num_episodes or bool(min_transitions and short_of_transitions())

    def wave_size() -> int:
        if drop_under_way:
            return 0 if budget_met() else num_envs
        if launched < num_episodes:
            return min(num_envs, num_episodes - launched)
        return num_envs if short_of_transitions() else 0

    first_wave = True
    while (wave := wave_size()) > 0:
        # ----- start a wave: every env (lockstep) or the first B episodes (continuous) --------------------------
        for i in range(wave):
            assign(i)
        push_tasks()
        raw_obs, info = vec.reset(seed=seed if first_wave else None)
        first_wave = False
        obs, obs_t = boundary.observations(raw_obs)
        policy.reset(num_envs)
        if on_step is not None:
            on_step(vec)
        resetting = np.zeros(num_envs, dtype=bool)  # envs whose next step is an autoreset, not a transition
        env_task.check(info, env_launch >= 0)

        while (env_launch >= 0).any():
            task_t = env_task.rows(boundary) if pass_task else None
            action, action_t = boundary.actions(policy.act_tensor(obs_t, task_t))
            raw_next, reward, terminated, truncated, info = vec.step(action)
            next_obs, next_t = boundary.observations(raw_next)
            if on_step is not None:
                on_step(vec)
            record = (env_launch >= 0) & ~resetting
            env_task.check(info, env_launch >= 0)
            returns[record] += reward[record]
            closed = recorder.add_steps(obs, action, reward, next_obs, terminated, truncated, mask=record)
            transition = Transition(
                obs_t,
                action_t,
                next_t,
                boundary.tensor(reward.astype(np.float32)),
                boundary.tensor(np.asarray(terminated, dtype=bool)),
            )
            policy.observe_tensor(transition, boundary.tensor(~resetting))
            # After observe: forget envs whose episode just ended (so the next act never mixes the old episode with
            # the new task) and envs that were only being reset (so the reset step's meaningless row is dropped even
            # by a policy that ignores `valid`).
            forget = resetting | terminated | truncated
            if forget.any():
                policy.reset_envs(boundary.tensor(forget))
            refill = False
            for i, episode in closed:
                arrays = None if family is None else buffer.episode(episode)
                s = EpisodeStats(
                    episode=episode,
                    launch=int(env_launch[i]),
                    env_index=i,
                    task=env_task[i].as_dict(),  # type: ignore[union-attr]
                    episode_return=float(returns[i]),
                    length=int(buffer.episode_lengths[episode]),
                    terminated=bool(terminated[i]),
                    success=None if arrays is None else family.success(arrays),
                    measures={} if arrays is None else dict(family.measures(arrays)),
                )
                stats.append(s)
                if on_episode is not None:
                    on_episode(s)
                if not lockstep and start_another():
                    assign(i)
                    refill = True
                else:
                    env_launch[i] = -1
                    if lockstep:
                        env_task[i] = None
            if drop_under_way and closed and budget_met():  # CaDM's rule: the episodes under way are not kept
                for i in np.flatnonzero(env_launch >= 0):
                    recorder.discard(int(i))
                env_launch[:] = -1
                break
            if refill:
                push_tasks()  # before the next step, whose autoreset then applies the new task
            resetting = terminated | truncated
            obs, obs_t = next_obs, next_t
    return Collection(buffer, stats)


class _AssignedTasks:
    """The task of each sub-environment (None: idle), and its array forms, rebuilt only when a task changes.

    Args:
        num_envs: B.
    """

    def __init__(self, num_envs: int) -> None:
        self.tasks: list[TaskParams | None] = [None] * num_envs
        self._expected: np.ndarray | None = None
        self._rows: Tensor | None = None

    def __getitem__(self, i: int) -> TaskParams | None:
        return self.tasks[i]

    def __setitem__(self, i: int, task: TaskParams | None) -> None:
        self.tasks[i] = task
        self._expected = self._rows = None

    def rows(self, boundary: _Boundary) -> Tensor:
        """``[B, T]`` float32 task parameters on the policy's device (idle environments get any assigned task)."""
        if self._rows is None:
            fallback = next(t for t in self.tasks if t is not None)
            self._rows = boundary.tensor(np.stack([(t if t is not None else fallback).as_array() for t in self.tasks]))
        return self._rows

    def check(self, info: dict[str, Any], active: np.ndarray) -> None:
        """Raise if an active sub-environment reports (``info["task"]``) a task other than its assigned one."""
        assigned = next((t for t in self.tasks if t is not None), None)
        if assigned is None:
            return
        names = tuple(k for k, _ in assigned.values)
        reported = _reported_tasks(info, names, len(self.tasks))
        if reported is None:  # the labels could not be checked: the buffer might record tasks the physics never had
            raise RuntimeError(f"the sub-environments were assigned tasks but report none in info['task']; {CONTRACT}")
        if self._expected is None:
            nan = np.full(len(names), np.nan)
            self._expected = np.stack([nan if t is None else t.as_array().astype(np.float64) for t in self.tasks])
        # np.allclose(reported, expected, rtol=1e-6, atol=1e-6) per row, over the parameters the env reports
        close = np.abs(reported - self._expected) <= 1e-6 + 1e-6 * np.abs(self._expected)
        silent = np.flatnonzero(active & np.isnan(reported).all(axis=1))
        if silent.size:
            raise RuntimeError(
                f"sub-environment {int(silent[0])} was assigned a task but reports none in info['task']; {CONTRACT}"
            )
        wrong = np.flatnonzero(active & ~(close | np.isnan(reported)).all(axis=1))
        if wrong.size:
            i = int(wrong[0])
            raise RuntimeError(
                f"sub-environment {i} reports task {dict(zip(names, reported[i].tolist(), strict=True))} but was "
                f"assigned {self.tasks[i].as_dict()}: its episode would mix tasks"  # type: ignore[union-attr]
            )
