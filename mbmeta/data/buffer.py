"""Whole episodes with their task parameters, in memory and in one ``.npz`` file on disk.

:class:`EpisodeBuffer` keeps every transition of every episode in flat, preallocated arrays whose capacity doubles
when full (appending is amortised O(step), never a copy of everything per episode). Episode ``e`` occupies rows
``starts[e]:starts[e + 1]``; its task parameters are row ``e`` of :attr:`EpisodeBuffer.tasks`.

On disk a buffer is ONE ``.npz`` file of plain arrays plus a JSON metadata string, written atomically (temporary
file in the same directory, flush, fsync, ``os.replace``) and read with ``allow_pickle=False`` so that loading never
executes code. :class:`EpisodeRecorder` builds episodes step by step from a vector environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mbmeta.data.atomic import atomic_write
from mbmeta.types import TaskParams

FORMAT_NAME = "mbmeta.EpisodeBuffer"
FORMAT_VERSION = 1

# Per-step fields: name -> (dtype, whether it has a trailing feature dim ("obs"/"action") or is a scalar per step).
_STEP_FIELDS: dict[str, tuple[type, str | None]] = {
    "obs": (np.float32, "obs"),
    "action": (np.float32, "action"),
    "reward": (np.float32, None),
    "next_obs": (np.float32, "obs"),
    "terminated": (np.bool_, None),
    "truncated": (np.bool_, None),
}

TaskLike = TaskParams | Mapping[str, float]


class BufferFormatError(ValueError):
    """A buffer file is corrupt, truncated or not an EpisodeBuffer file (the message names the file)."""


def _task_items(task: TaskLike) -> tuple[tuple[str, ...], np.ndarray]:
    """Split a task into its parameter names and a ``[T]`` float64 vector."""
    if isinstance(task, TaskParams):
        names = tuple(k for k, _ in task.values)
        values = [v for _, v in task.values]
    elif isinstance(task, Mapping):
        names = tuple(str(k) for k in task)
        values = [float(v) for v in task.values()]
    else:
        raise TypeError(f"task must be a TaskParams or a dict[str, float], got {type(task).__name__}")
    return names, np.asarray(values, dtype=np.float64).reshape(len(names))


class EpisodeBuffer:
    """Episodes of transitions, each with the task parameters it was collected under.

    Per step: ``obs [O]``, ``action [A]``, ``reward``, ``next_obs [O]``, ``terminated``, ``truncated``; per
    episode: the task vector ``[T]`` (names in :attr:`task_names`). Metadata: the family name and env id.
    Dimensions and task names are fixed by the constructor or by the first episode added.

    Args:
        obs_dim: O, or None to take it from the first episode.
        action_dim: A, or None to take it from the first episode.
        task_names: names of the T task parameters, or None to take them from the first episode's task.
        family: task-family name (metadata), e.g. ``"pendulum"``.
        env_id: Gymnasium id of the environment (metadata), e.g. ``"mbmeta/Pendulum-v0"``.
        capacity: initial number of transitions preallocated (grows by doubling).
    """

    def __init__(
        self,
        obs_dim: int | None = None,
        action_dim: int | None = None,
        task_names: Sequence[str] | None = None,
        family: str | None = None,
        env_id: str | None = None,
        capacity: int = 1024,
    ) -> None:
        for name, dim in (("obs_dim", obs_dim), ("action_dim", action_dim)):
            if dim is not None and (not isinstance(dim, int | np.integer) or dim <= 0):
                raise ValueError(f"{name} must be a positive int or None, got {dim!r}")
        if capacity <= 0:
            raise ValueError(f"capacity must be > 0, got {capacity}")
        self._obs_dim = None if obs_dim is None else int(obs_dim)
        self._action_dim = None if action_dim is None else int(action_dim)
        self._task_names: tuple[str, ...] | None = None if task_names is None else tuple(str(n) for n in task_names)
        self.family = family
        self.env_id = env_id
        self._capacity = int(capacity)
        self._size = 0  # transitions stored
        self._data: dict[str, np.ndarray] | None = None  # allocated once the dims are known
        self._starts = np.zeros(1, dtype=np.int64)  # [num_episodes + 1] row offsets
        self._num_episodes = 0
        self._tasks = np.zeros((0, 0), dtype=np.float64)  # [episode capacity, T]

    # ----- dimensions and sizes ------------------------------------------------------------------------------
    @property
    def obs_dim(self) -> int:
        """O, the observation size."""
        if self._obs_dim is None:
            raise ValueError("the buffer is empty: obs_dim is unknown until the first episode is added")
        return self._obs_dim

    @property
    def action_dim(self) -> int:
        """A, the action size."""
        if self._action_dim is None:
            raise ValueError("the buffer is empty: action_dim is unknown until the first episode is added")
        return self._action_dim

    @property
    def task_names(self) -> tuple[str, ...]:
        """Names of the T task parameters, in the order of the task vectors."""
        if self._task_names is None:
            raise ValueError("the buffer is empty: task_names are unknown until the first episode is added")
        return self._task_names

    @property
    def task_dim(self) -> int:
        """T, the number of task parameters."""
        return len(self.task_names)

    @property
    def num_episodes(self) -> int:
        """Number of episodes stored."""
        return self._num_episodes

    @property
    def num_transitions(self) -> int:
        """Number of transitions stored (sum of episode lengths)."""
        return self._size

    @property
    def episode_starts(self) -> np.ndarray:
        """``[num_episodes + 1]`` int64 row offsets: episode ``e`` is rows ``starts[e]:starts[e + 1]`` (read-only)."""
        return _readonly(self._starts[: self._num_episodes + 1])

    @property
    def episode_lengths(self) -> np.ndarray:
        """``[num_episodes]`` int64 number of transitions per episode."""
        return np.diff(self.episode_starts)

    @property
    def tasks(self) -> np.ndarray:
        """``[num_episodes, T]`` float64 task vector of every episode (read-only view)."""
        if self._num_episodes == 0:
            return np.zeros((0, len(self._task_names or ())), dtype=np.float64)
        return _readonly(self._tasks[: self._num_episodes])

    def task(self, episode: int) -> TaskParams:
        """The task parameters of one episode."""
        self._check_episode(episode)
        return TaskParams(tuple(zip(self.task_names, (float(v) for v in self._tasks[episode]), strict=True)))

    def field(self, name: str) -> np.ndarray:
        """One per-step field over all stored transitions (read-only view).

        Args:
            name: one of ``obs [N, O]``, ``action [N, A]``, ``reward [N]``, ``next_obs [N, O]``,
                ``terminated [N]``, ``truncated [N]`` where N is :attr:`num_transitions`.
        """
        if name not in _STEP_FIELDS:
            raise KeyError(f"unknown field {name!r}; valid fields are {list(_STEP_FIELDS)}")
        if self._data is None:
            dtype, kind = _STEP_FIELDS[name]
            width = {"obs": self._obs_dim, "action": self._action_dim, None: None}[kind]
            return np.zeros((0,) if kind is None else (0, width or 0), dtype=dtype)
        return _readonly(self._data[name][: self._size])

    obs = property(lambda self: self.field("obs"), doc="``[N, O]`` float32 observations before each step.")
    action = property(lambda self: self.field("action"), doc="``[N, A]`` float32 actions.")
    reward = property(lambda self: self.field("reward"), doc="``[N]`` float32 rewards.")
    next_obs = property(lambda self: self.field("next_obs"), doc="``[N, O]`` float32 observations after each step.")
    terminated = property(lambda self: self.field("terminated"), doc="``[N]`` bool terminal-state flags.")
    truncated = property(lambda self: self.field("truncated"), doc="``[N]`` bool time-limit (truncation) flags.")

    def episode(self, episode: int) -> dict[str, np.ndarray]:
        """All per-step fields of one episode as read-only views (``obs [L, O]``, ..., ``truncated [L]``)."""
        self._check_episode(episode)
        lo, hi = int(self._starts[episode]), int(self._starts[episode + 1])
        return {name: self.field(name)[lo:hi] for name in _STEP_FIELDS}

    def _check_episode(self, episode: int) -> None:
        if not 0 <= episode < self._num_episodes:
            raise IndexError(f"episode {episode} out of range: the buffer holds {self._num_episodes} episodes")

    def __repr__(self) -> str:
        return (
            f"EpisodeBuffer(family={self.family!r}, env_id={self.env_id!r}, episodes={self._num_episodes}, "
            f"transitions={self._size}, obs_dim={self._obs_dim}, action_dim={self._action_dim}, "
            f"task_names={self._task_names})"
        )

    # ----- appending -----------------------------------------------------------------------------------------
    def add_episode(
        self,
        obs: Any,
        action: Any,
        reward: Any,
        next_obs: Any,
        terminated: Any,
        truncated: Any,
        task: TaskLike,
    ) -> int:
        """Append one episode (validated; stored as float32 / bool).

        Args:
            obs: ``[L, O]`` observations before each step.
            action: ``[L, A]`` actions.
            reward: ``[L]`` rewards.
            next_obs: ``[L, O]`` observations after each step.
            terminated: ``[L]`` bool; may be True only at the last step.
            truncated: ``[L]`` bool; may be True only at the last step.
            task: the episode's task parameters (names must match the buffer's task names, in order).

        Returns:
            The index of the new episode.

        Raises:
            ValueError: inconsistent shapes, non-finite values (naming the field), a terminated/truncated flag
                before the last step, or task names different from the buffer's.
        """
        arrays = self._validate_episode(obs, action, reward, next_obs, terminated, truncated)
        names, task_vec = _task_items(task)
        if not np.all(np.isfinite(task_vec)):
            raise ValueError(f"task contains NaN or inf: {dict(zip(names, task_vec.tolist(), strict=True))}")
        if self._task_names is None:
            self._task_names = names
        elif names != self._task_names:
            raise ValueError(f"task parameters {list(names)} do not match the buffer's {list(self._task_names)}")
        length = arrays["obs"].shape[0]
        self._obs_dim = arrays["obs"].shape[1]
        self._action_dim = arrays["action"].shape[1]
        self._reserve(self._size + length, self._num_episodes + 1)
        assert self._data is not None
        for name, arr in arrays.items():
            self._data[name][self._size : self._size + length] = arr
        self._tasks[self._num_episodes] = task_vec
        self._size += length
        self._num_episodes += 1
        self._starts[self._num_episodes] = self._size
        return self._num_episodes - 1

    def _validate_episode(self, *values: Any) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        for (name, (dtype, kind)), value in zip(_STEP_FIELDS.items(), values, strict=True):
            try:
                arr = np.asarray(value)
            except Exception as err:  # ragged lists etc.
                raise ValueError(f"{name}: cannot be converted to an array ({err})") from err
            if dtype is np.bool_:
                if arr.dtype != np.bool_ and not (np.issubdtype(arr.dtype, np.number) and np.isin(arr, (0, 1)).all()):
                    raise ValueError(f"{name} must be bool (or 0/1), got dtype {arr.dtype}")
            elif not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
                raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
            arr = arr.astype(dtype, copy=False)
            expected_ndim = 1 if kind is None else 2
            if arr.ndim != expected_ndim:
                shape = "[L]" if kind is None else f"[L, {'O' if kind == 'obs' else 'A'}]"
                raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
            if dtype is np.float32 and not np.all(np.isfinite(arr)):
                bad = np.argwhere(~np.isfinite(arr))[0].tolist()
                raise ValueError(f"{name} contains NaN or inf (first at index {bad})")
            arrays[name] = arr
        length = arrays["obs"].shape[0]
        if length == 0:
            raise ValueError("an episode needs at least one transition, got L = 0")
        for name, arr in arrays.items():
            if arr.shape[0] != length:
                raise ValueError(
                    f"{name} has {arr.shape[0]} steps but obs has {length}: every field needs L = {length}"
                )
        if arrays["next_obs"].shape[1] != arrays["obs"].shape[1]:
            raise ValueError(f"next_obs has O = {arrays['next_obs'].shape[1]} but obs has O = {arrays['obs'].shape[1]}")
        for name, dim, have in (
            ("obs", self._obs_dim, arrays["obs"].shape[1]),
            ("action", self._action_dim, arrays["action"].shape[1]),
        ):
            if have == 0:
                raise ValueError(f"{name} must have a non-empty feature dimension, got {arrays[name].shape}")
            if dim is not None and have != dim:
                raise ValueError(f"{name} has dimension {have} but the buffer's is {dim}")
        ended = arrays["terminated"][:-1] | arrays["truncated"][:-1]
        if ended.any():
            step = int(np.argmax(ended))
            raise ValueError(
                f"terminated/truncated is True at step {step} of {length}: an episode ends at its first such step; "
                "split it into separate episodes"
            )
        return arrays

    def _reserve(self, rows: int, episodes: int) -> None:
        """Grow the preallocated arrays (by doubling) to hold ``rows`` transitions and ``episodes`` episodes."""
        if self._data is None:
            capacity = max(self._capacity, rows)
            assert self._obs_dim is not None and self._action_dim is not None
            self._data = {
                name: np.zeros(self._field_shape(name, capacity), dtype=dtype)
                for name, (dtype, _) in _STEP_FIELDS.items()
            }
            self._capacity = capacity
        elif rows > self._capacity:
            capacity = self._capacity
            while capacity < rows:
                capacity *= 2
            for name, old in self._data.items():
                new = np.zeros(self._field_shape(name, capacity), dtype=old.dtype)
                new[: self._size] = old[: self._size]
                self._data[name] = new
            self._capacity = capacity
        if episodes + 1 > self._starts.shape[0]:
            grown = max(2 * self._starts.shape[0], episodes + 1)
            self._starts = np.concatenate([self._starts, np.zeros(grown - self._starts.shape[0], np.int64)])
        task_dim = len(self._task_names or ())
        if episodes > self._tasks.shape[0] or self._tasks.shape[1] != task_dim:
            grown = max(2 * self._tasks.shape[0], episodes, 16)
            tasks = np.zeros((grown, task_dim), dtype=np.float64)
            if self._num_episodes:
                tasks[: self._num_episodes] = self._tasks[: self._num_episodes]
            self._tasks = tasks

    def _field_shape(self, name: str, rows: int) -> tuple[int, ...]:
        kind = _STEP_FIELDS[name][1]
        if kind is None:
            return (rows,)
        width = self._obs_dim if kind == "obs" else self._action_dim
        assert width is not None
        return (rows, width)

    def extend(self, other: EpisodeBuffer) -> None:
        """Append every episode of another buffer (same dims and task names)."""
        for e in range(other.num_episodes):
            ep = other.episode(e)
            self.add_episode(**ep, task=other.task(e))
        if self.family is None:
            self.family = other.family
        if self.env_id is None:
            self.env_id = other.env_id

    def first(self, count: int) -> EpisodeBuffer:
        """A copy of the first ``count`` episodes (e.g. to drop what an interrupted step appended).

        Raises:
            ValueError: ``count`` is negative or more than the buffer holds.
        """
        if not 0 <= count <= self.num_episodes:
            raise ValueError(f"first({count}): the buffer holds {self.num_episodes} episodes")
        kept = EpisodeBuffer(self.obs_dim, self.action_dim, self.task_names, family=self.family, env_id=self.env_id)
        for i in range(count):
            kept.add_episode(**self.episode(i), task=self.task(i))
        return kept

    def digest(self, episodes: int | None = None) -> str:
        """SHA-256 (hex) of the first ``episodes`` episodes' content (all when None): steps, tasks and dimensions.

        Equal for equal content whatever the file's bytes (zip timestamps), so a run can record the digest of what it
        committed and check it on resume even when an interrupted step appended more episodes since.
        """
        count = self.num_episodes if episodes is None else int(episodes)
        if not 0 <= count <= self.num_episodes:
            raise ValueError(f"digest({count}): the buffer holds {self.num_episodes} episodes")
        rows = int(self._starts[count])
        sha = hashlib.sha256()
        sha.update(json.dumps([self._obs_dim, self._action_dim, list(self._task_names or ()), count, rows]).encode())
        if count:
            for name in _STEP_FIELDS:
                sha.update(np.ascontiguousarray(self.field(name)[:rows]).tobytes())
            sha.update(np.ascontiguousarray(self._starts[: count + 1]).tobytes())
            sha.update(np.ascontiguousarray(self._tasks[:count]).tobytes())
        return sha.hexdigest()

    # ----- statistics ----------------------------------------------------------------------------------------
    def transition_indices(self, episodes: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """``[N']`` int64 row indices of every transition of the given episodes (all when None)."""
        if episodes is None:
            return np.arange(self._size, dtype=np.int64)
        episodes = np.asarray(episodes, dtype=np.int64).reshape(-1)
        if episodes.size and (episodes.min() < 0 or episodes.max() >= self._num_episodes):
            raise IndexError(f"episode indices must lie in [0, {self._num_episodes}), got {episodes.tolist()[:10]}...")
        starts = self._starts[episodes]
        lengths = self._starts[episodes + 1] - starts
        # Vectorised concatenation of ranges: offset of each row within its episode plus that episode's start.
        offsets = np.arange(lengths.sum(), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return np.repeat(starts, lengths) + offsets

    def statistics(
        self, episodes: Sequence[int] | np.ndarray | None = None, min_std: float = 1e-6
    ) -> dict[str, Tensor]:
        """Means and standard deviations for normalisers, as float32 tensors.

        Args:
            episodes: episode indices to use (e.g. the training split); all episodes when None.
            min_std: lower clamp of every standard deviation (constant features would divide by zero).

        Returns:
            ``obs_mean, obs_std [O]``, ``action_mean, action_std [A]``, ``delta_mean, delta_std [O]``
            (delta = next_obs - obs), ``reward_mean, reward_std []``.

        Raises:
            ValueError: the buffer (or the selected subset) holds no transitions.
        """
        rows = self.transition_indices(episodes)
        if rows.size == 0:
            what = "the buffer is empty" if self._size == 0 else "the selected episodes hold no transitions"
            raise ValueError(f"cannot compute statistics: {what}")
        assert self._data is not None
        obs = self._data["obs"][rows].astype(np.float64)
        values = {
            "obs": obs,
            "action": self._data["action"][rows].astype(np.float64),
            "delta": self._data["next_obs"][rows].astype(np.float64) - obs,
            "reward": self._data["reward"][rows].astype(np.float64),
        }
        stats = {}
        for name, v in values.items():
            stats[f"{name}_mean"] = torch.as_tensor(v.mean(axis=0), dtype=torch.float32)
            stats[f"{name}_std"] = torch.as_tensor(np.maximum(v.std(axis=0), min_std), dtype=torch.float32)
        return stats

    # ----- persistence ---------------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """The JSON-serialisable metadata stored beside the arrays."""
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "family": self.family,
            "env_id": self.env_id,
            "obs_dim": self._obs_dim,
            "action_dim": self._action_dim,
            "task_names": None if self._task_names is None else list(self._task_names),
            "num_episodes": self._num_episodes,
            "num_transitions": self._size,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the buffer to ONE ``.npz`` file, atomically.

        The arrays go to a temporary file in the same directory, which is flushed and fsynced and then moved over
        ``path`` with ``os.replace``: a crash or error at any point leaves either the old file or the new one, never
        a partial file.

        Args:
            path: destination file (conventionally ending in ``.npz``; written exactly to this name).

        Returns:
            The path written.
        """
        arrays = {name: self.field(name) for name in _STEP_FIELDS}
        arrays["episode_starts"] = self.episode_starts
        arrays["tasks"] = self.tasks
        arrays["metadata"] = np.array(json.dumps(self.metadata()))  # 0-d unicode array: loads without pickle
        return atomic_write(path, lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EpisodeBuffer:
        """Read a buffer written by :meth:`save` (never unpickles: ``allow_pickle=False``).

        Raises:
            FileNotFoundError: no file at ``path``.
            BufferFormatError: the file is truncated, corrupt or not an EpisodeBuffer file (the message names the
                file and the problem).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"buffer file {str(path)!r} does not exist")
        try:
            with np.load(path, allow_pickle=False) as npz:
                contents = {key: npz[key] for key in npz.files}
        except PermissionError:
            raise  # names the file; a permission problem, not a damaged file
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, IndexError, RuntimeError) as err:
            raise BufferFormatError(
                f"buffer file {str(path)!r} is corrupt, truncated or not an .npz file: {type(err).__name__}: {err}"
            ) from err
        try:
            return cls._from_arrays(contents)
        except BufferFormatError as err:
            raise BufferFormatError(f"buffer file {str(path)!r}: {err}") from None

    @classmethod
    def _from_arrays(cls, contents: dict[str, np.ndarray]) -> EpisodeBuffer:
        required = [*_STEP_FIELDS, "episode_starts", "tasks", "metadata"]
        missing = [k for k in required if k not in contents]
        if missing:
            raise BufferFormatError(f"not an EpisodeBuffer file: missing arrays {missing}")
        raw = contents["metadata"]
        if raw.shape != () or raw.dtype.kind != "U":
            raise BufferFormatError("metadata must be a JSON string")
        try:
            meta = json.loads(str(raw))
        except json.JSONDecodeError as err:
            raise BufferFormatError(f"metadata is not valid JSON ({err})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
            raise BufferFormatError(
                f"not an EpisodeBuffer file (format {meta.get('format')!r}, expected {FORMAT_NAME!r})"
            )
        if meta.get("version") != FORMAT_VERSION:
            raise BufferFormatError(
                f"unsupported format version {meta.get('version')!r} (this code reads {FORMAT_VERSION})"
            )
        starts = contents["episode_starts"]
        tasks = contents["tasks"]
        n_eps, n_rows = meta.get("num_episodes"), meta.get("num_transitions")
        task_names = meta.get("task_names")
        counts_ok = all(isinstance(v, int) and v >= 0 for v in (n_eps, n_rows))
        if not counts_ok or (n_eps == 0) != (n_rows == 0):
            raise BufferFormatError(f"metadata has invalid counts: num_episodes={n_eps!r}, num_transitions={n_rows!r}")
        if task_names is not None and not (
            isinstance(task_names, list) and all(isinstance(n, str) for n in task_names)
        ):
            raise BufferFormatError(f"metadata task_names must be a list of strings, got {task_names!r}")
        buf = cls(family=meta.get("family"), env_id=meta.get("env_id"), capacity=max(int(n_rows or 0), 1))
        if n_eps == 0:
            buf._obs_dim, buf._action_dim = meta.get("obs_dim"), meta.get("action_dim")
            buf._task_names = None if task_names is None else tuple(task_names)
            return buf
        problems = []
        if starts.dtype != np.int64 or starts.shape != (n_eps + 1,):
            problems.append(f"episode_starts has shape {starts.shape} {starts.dtype}, expected ({n_eps + 1},) int64")
        elif starts[0] != 0 or starts[-1] != n_rows or np.any(np.diff(starts) <= 0):
            problems.append("episode_starts must start at 0, increase strictly and end at num_transitions")
        if task_names is None or tasks.dtype != np.float64 or tasks.shape != (n_eps, len(task_names)):
            problems.append(f"tasks has shape {tasks.shape} {tasks.dtype}, expected ({n_eps}, T) float64")
        widths = {"obs": meta.get("obs_dim"), "action": meta.get("action_dim"), None: None}
        for name, (dtype, kind) in _STEP_FIELDS.items():
            shape = (n_rows,) if kind is None else (n_rows, widths[kind])
            arr = contents[name]
            if arr.dtype != dtype or arr.shape != shape:
                problems.append(f"{name} has shape {arr.shape} {arr.dtype}, expected {shape} {np.dtype(dtype)}")
        if problems:
            raise BufferFormatError("inconsistent arrays: " + "; ".join(problems))
        not_finite = [n for n in ("obs", "action", "reward", "next_obs") if not np.isfinite(contents[n]).all()]
        if not_finite or not np.isfinite(tasks).all():
            raise BufferFormatError(f"non-finite values (NaN/inf) in {not_finite or ['tasks']}")
        buf._obs_dim, buf._action_dim = int(meta["obs_dim"]), int(meta["action_dim"])
        buf._task_names = tuple(task_names)
        buf._data = {name: np.array(contents[name]) for name in _STEP_FIELDS}
        buf._capacity = int(n_rows)
        buf._size = int(n_rows)
        buf._starts = np.array(starts)
        buf._num_episodes = int(n_eps)
        buf._tasks = np.array(tasks)
        return buf


def _readonly(arr: np.ndarray) -> np.ndarray:
    view = arr.view()
    view.flags.writeable = False
    return view
