"""Collecting episodes from a Gymnasium vector environment into an :class:`~mbmeta.data.buffer.EpisodeBuffer`.

Each sub-environment runs its own task: a task is set with ``vector_env.set_attr("task", [...])`` before the
sub-environment resets (see :mod:`mbmeta.envs.task_env`), and every recorded step is checked against the task the
environment reports in ``info["task"]``, so an episode can never mix tasks.

Autoreset: the vector env is built with ``AutoresetMode.NEXT_STEP`` (Gymnasium's default, and the cheapest: the
reset costs no extra call). After a sub-environment's episode ends at step ``t`` (``terminated or truncated``), its
next ``step`` call ignores the action and only resets it, returning the new episode's first observation with
reward 0. That reset step is not a transition: it is never recorded, it is marked ``valid=False`` for an
``observe`` hook, and a stateful policy is told to forget that sub-environment both when its episode ends and
right after the reset step (:meth:`Policy.reset_envs`). The next episode's task is set between the two calls, so
the reset applies it.

Policies: anything with ``act(obs [B, O]) -> action [B, A]`` (numpy in and out), or a plain callable; optional hooks
``reset(batch_size)``, ``observe(obs, action, next_obs)`` and ``reset_envs(mask [B])`` let an MPC agent keep its
context window and warm start. A stateful policy without ``reset_envs`` is run in *lockstep* waves (all
sub-environments start together; the wave ends when all have finished) so its per-env state is never stale.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from mbmeta.data.buffer import EpisodeBuffer, EpisodeRecorder, TaskLike
from mbmeta.envs.family import TaskFamily, TaskParams


@runtime_checkable
class Policy(Protocol):
    """What the collector drives. Only :meth:`act` is required; the hooks are looked up with ``getattr``.

    Optional hooks (an MPC agent implements them):

    - ``reset(batch_size: int) -> None``: forget everything, B environments follow (called before the first step,
      and before every wave in lockstep mode).
    - ``observe(obs [B, O], action [B, A], next_obs [B, O]) -> None``: the transition every environment just made.
      If the hook has parameters named ``reward``, ``terminated`` or ``valid``, they receive ``[B]`` arrays:
      the rewards, the terminal flags, and False for rows that are no transition (an environment that was only
      being reset this step); such rows are always followed by ``reset_envs``.
    - ``act`` may take a ``task`` keyword: with ``collect_episodes(pass_task=True)`` it receives the true task
      parameters ``[B, T]`` (for an oracle model).
    - ``reset_envs(mask [B] bool) -> None``: forget the state of the masked environments: called after ``observe``
      for environments whose episode just ended and for those that were only being reset.
    """

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions ``[B, A]`` for observations ``[B, O]`` (float32 numpy)."""
        ...


class RandomPolicy:
    """Uniformly random actions within a Box action space (standard normal on unbounded dimensions).

    Args:
        action_space: the single-environment ``Box`` action space.
        seed: seeds this policy's own ``np.random.Generator``.
    """

    def __init__(self, action_space: gym.spaces.Box, seed: int | None = 0) -> None:
        if not isinstance(action_space, gym.spaces.Box):
            raise TypeError(f"RandomPolicy needs a Box action space, got {type(action_space).__name__}")
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
        return np.where(self.bounded, low + u * (high - low), normal).astype(np.float32)

    __call__ = act


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
    """

    episode: int
    launch: int
    env_index: int
    task: dict[str, float]
    episode_return: float
    length: int
    terminated: bool
    success: bool | None = None


class Collection(NamedTuple):
    """What :func:`collect_episodes` returns: the buffer written to and one :class:`EpisodeStats` per episode."""

    buffer: EpisodeBuffer
    episodes: list[EpisodeStats]


def _make_family_env(family_name: str, env_kwargs: dict[str, Any]) -> gym.Env:
    """Build one env of a registered family (module level so AsyncVectorEnv can pickle it for spawned workers)."""
    from mbmeta.envs import get_family

    return get_family(family_name).make_env(**env_kwargs)


def family_env_fns(family: TaskFamily | str, num_envs: int, **env_kwargs: Any) -> list[Callable[[], gym.Env]]:
    """``num_envs`` picklable constructors of a family's environment (for any vector env, including spawn)."""
    name = family if isinstance(family, str) else family.name
    return [functools.partial(_make_family_env, name, dict(env_kwargs)) for _ in range(num_envs)]


def make_vector_env(
    env_fns: Sequence[Callable[[], gym.Env]], vectorization: Literal["sync", "async"] = "sync"
) -> VectorEnv:
    """A vector env in ``NEXT_STEP`` autoreset mode (what :func:`collect_episodes` expects).

    Args:
        env_fns: one constructor per sub-environment.
        vectorization: ``"sync"`` (one process) or ``"async"`` (one spawned process per sub-environment).
    """
    if not env_fns:
        raise ValueError("env_fns is empty: need at least one environment constructor")
    if vectorization == "sync":
        return SyncVectorEnv(list(env_fns), autoreset_mode=AutoresetMode.NEXT_STEP)
    if vectorization == "async":
        return AsyncVectorEnv(list(env_fns), context="spawn", autoreset_mode=AutoresetMode.NEXT_STEP)
    raise ValueError(f"unknown vectorization {vectorization!r}; valid values are 'sync' and 'async'")


class _TaskSource:
    """Hands out the task of the j-th launched episode."""

    def __init__(
        self,
        tasks: Sequence[TaskLike] | Callable[[np.random.Generator], TaskLike] | None,
        family: TaskFamily | None,
        split: Literal["train", "test"],
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
    policy: Policy | Callable[[np.ndarray], np.ndarray],
    num_episodes: int,
    *,
    envs: VectorEnv | Sequence[Callable[[], gym.Env]] | None = None,
    family: TaskFamily | str | None = None,
    tasks: Sequence[TaskLike] | Callable[[np.random.Generator], TaskLike] | None = None,
    split: Literal["train", "test"] = "train",
    num_envs: int = 1,
    vectorization: Literal["sync", "async"] = "sync",
    env_kwargs: dict[str, Any] | None = None,
    buffer: EpisodeBuffer | None = None,
    seed: int = 0,
    lockstep: bool | None = None,
    pass_task: bool = False,
    on_episode: Callable[[EpisodeStats], None] | None = None,
) -> Collection:
    """Run a policy in parallel environments, each with its own task, until ``num_episodes`` episodes complete.

    Exactly ``num_episodes`` episodes are started (episode ``j`` gets task ``j``); sub-environments with nothing
    left to run keep stepping but are not recorded. Episodes enter the buffer in the order they finish.
    Deterministic given ``seed`` (and a deterministic policy): sub-environment ``i`` is reset with seed
    ``seed + i`` once, task sampling uses its own generator seeded from ``seed``.

    Args:
        policy: ``act(obs [B, O]) -> [B, A]`` (numpy) object or callable, with optional hooks (see :class:`Policy`).
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
        env_kwargs: keyword arguments for ``family.make_env`` (e.g. ``render_mode``).
        buffer: where episodes are appended; a new buffer when None.
        seed: seeds the environments' resets and the task sampling.
        lockstep: run episodes in synchronised waves; None chooses it for stateful policies that lack
            ``reset_envs``.
        pass_task: give the policy's ``act`` the true task parameters as ``task=[B, T]`` (oracle models only).
        on_episode: called with each finished episode's stats (e.g. for logging).

    Returns:
        The buffer and one :class:`EpisodeStats` per episode, in the order they were added.

    Raises:
        ValueError: bad arguments, or a policy returning actions of the wrong shape or with NaN.
        RuntimeError: an environment reports a different task than the one assigned (an episode would mix tasks).
    """
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
    fam: TaskFamily | None
    if isinstance(family, str):
        from mbmeta.envs import get_family

        fam = get_family(family)
    else:
        fam = family
    act = policy if callable(policy) and not hasattr(policy, "act") else policy.act  # type: ignore[union-attr]
    if pass_task and "task" not in _parameter_names(act):
        raise ValueError("pass_task=True but the policy's act() has no 'task' parameter")
    reset_hook = getattr(policy, "reset", None)
    observe_hook = getattr(policy, "observe", None)
    reset_envs_hook = getattr(policy, "reset_envs", None)
    if lockstep is None:
        lockstep = (observe_hook is not None or reset_hook is not None) and reset_envs_hook is None

    own_envs = not isinstance(envs, VectorEnv)
    if envs is None:
        if fam is None:
            raise ValueError("give envs (a vector env or env constructors) or a family to build them from")
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
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
            act,
            reset_hook,
            _observe_with_extras(observe_hook),
            reset_envs_hook,
            num_episodes,
            _TaskSource(tasks, fam, split, np.random.default_rng([seed, 1])),
            fam,
            buffer,
            seed,
            lockstep,
            pass_task,
            on_episode,
        )
    finally:
        if own_envs:
            vec.close()


def _collect(
    vec: VectorEnv,
    act: Callable[[np.ndarray], Any],
    reset_hook: Callable[[int], None] | None,
    observe_hook: Callable[..., None] | None,
    reset_envs_hook: Callable[[np.ndarray], None] | None,
    num_episodes: int,
    task_source: _TaskSource,
    family: TaskFamily | None,
    buffer: EpisodeBuffer | None,
    seed: int,
    lockstep: bool,
    pass_task: bool,
    on_episode: Callable[[EpisodeStats], None] | None,
) -> Collection:
    num_envs = vec.num_envs
    action_shape = (num_envs, *vec.single_action_space.shape)
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

    launched = 0
    env_launch = np.full(num_envs, -1)  # launch number of each env's episode; -1: idle (not recorded)
    env_task: list[TaskParams | None] = [None] * num_envs
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
        current = vec.get_attr("task") if any(t is None for t in env_task) else None
        vec.set_attr("task", [t if t is not None else current[i] for i, t in enumerate(env_task)])  # type: ignore[index]

    first_wave = True
    while launched < num_episodes:
        # ----- start a wave: every env (lockstep) or the first B episodes (continuous) --------------------------
        for i in range(min(num_envs, num_episodes - launched)):
            assign(i)
        push_tasks()
        obs, info = vec.reset(seed=seed if first_wave else None)
        first_wave = False
        if reset_hook is not None:
            reset_hook(num_envs)
        resetting = np.zeros(num_envs, dtype=bool)  # envs whose next step is an autoreset, not a transition
        _check_tasks(info, env_task, env_launch >= 0, num_envs)

        while (env_launch >= 0).any():
            obs32 = np.asarray(obs, dtype=np.float32)
            if pass_task:
                fallback = next(t for t in env_task if t is not None)  # idle envs get any valid task
                rows = np.stack([(t if t is not None else fallback).as_array() for t in env_task])
                action = np.asarray(act(obs32, task=rows), dtype=np.float32)
            else:
                action = np.asarray(act(obs32), dtype=np.float32)
            if action.shape != action_shape:
                raise ValueError(f"policy returned actions of shape {action.shape}, expected {action_shape}")
            if not np.all(np.isfinite(action)):
                raise ValueError("policy returned NaN or inf actions")
            next_obs, reward, terminated, truncated, info = vec.step(action)
            next32 = np.asarray(next_obs, dtype=np.float32)
            record = (env_launch >= 0) & ~resetting
            _check_tasks(info, env_task, (env_launch >= 0), num_envs)
            returns[record] += reward[record]
            closed = recorder.add_steps(obs32, action, reward, next32, terminated, truncated, mask=record)
            if observe_hook is not None:
                observe_hook(obs32, action, next32, reward.astype(np.float32), terminated, ~resetting)
            # After observe: forget envs whose episode just ended (so the next act never mixes the old episode with
            # the new task) and envs that were only being reset (so the reset step's meaningless row is dropped even
            # by an observe hook that ignores `valid`).
            forget = resetting | terminated | truncated
            if reset_envs_hook is not None and forget.any():
                reset_envs_hook(forget)
            refill = False
            for i, episode in closed:
                s = EpisodeStats(
                    episode=episode,
                    launch=int(env_launch[i]),
                    env_index=i,
                    task=env_task[i].as_dict(),  # type: ignore[union-attr]
                    episode_return=float(returns[i]),
                    length=int(buffer.episode_lengths[episode]),
                    terminated=bool(terminated[i]),
                    success=None if family is None else family.success(buffer.episode(episode)),
                )
                stats.append(s)
                if on_episode is not None:
                    on_episode(s)
                if not lockstep and launched < num_episodes:
                    assign(i)
                    refill = True
                else:
                    env_launch[i] = -1
                    env_task[i] = None if lockstep else env_task[i]
            if refill:
                push_tasks()  # before the next step, whose autoreset then applies the new task
            resetting = terminated | truncated
            obs = next_obs
    return Collection(buffer, stats)


def _parameter_names(fn: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # builtins without a signature
        return set()


def _observe_with_extras(hook: Callable[..., None] | None) -> Callable[..., None] | None:
    """Wrap an ``observe`` hook so it gets ``reward``/``terminated``/``valid`` only if it declares them."""
    if hook is None:
        return None
    names = _parameter_names(hook) & {"reward", "terminated", "valid"}

    def observe(obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray, reward, terminated, valid) -> None:
        extras = {"reward": reward, "terminated": terminated, "valid": valid}
        hook(obs, action, next_obs, **{k: v for k, v in extras.items() if k in names})

    return observe


def _check_tasks(info: dict[str, Any], env_task: list[TaskParams | None], active: np.ndarray, num_envs: int) -> None:
    """Raise if an active sub-environment reports a task other than its assigned one."""
    names = next((tuple(k for k, _ in t.values) for t in env_task if t is not None), None)
    if names is None:
        return
    reported = _reported_tasks(info, names, num_envs)
    if reported is None:
        return
    for i in np.flatnonzero(active):
        task = env_task[i]
        assert task is not None
        expected = task.as_array().astype(np.float64)
        row = reported[i]
        present = ~np.isnan(row)
        if present.any() and not np.allclose(row[present], expected[present], rtol=1e-6, atol=1e-6):
            raise RuntimeError(
                f"sub-environment {i} reports task {dict(zip(names, row.tolist(), strict=True))} but was assigned "
                f"{task.as_dict()}: its episode would mix tasks"
            )
