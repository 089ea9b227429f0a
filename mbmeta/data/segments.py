"""Trajectory segments for meta-learning: K context transitions followed by the M target transitions after them.

A *window* is one segment position inside one episode, identified by where its targets start (``t0``): targets are
steps ``t0 .. t0+M-1`` and the context is the K steps before, ``t0-K .. t0-1``. Windows never cross an episode
boundary. With ``pad_context`` a window may start early in an episode, where fewer than K steps precede ``t0``;
its context is then left-padded and a mask marks the real slots (what an agent sees early in an episode).

Where the context comes from (``context_source``):

- ``"preceding"`` (default, CaDM): the K steps just before the targets, as an agent adapting online sees them.
- ``"episode"``: K consecutive steps drawn at random from elsewhere in the same episode (same task), never
  overlapping the targets. The latent can then carry only what holds for the whole episode (the task), not the
  recent state (e.g. a gait's phase or speed), which would go stale during a planned rollout. The mask keeps the
  ``"preceding"`` pattern (only ``min(t0, K)`` real slots), so short contexts are as frequent as an agent sees them.

Everything here works on row indices into an :class:`~mbmeta.data.buffer.EpisodeBuffer`'s flat arrays and is
vectorised (no Python loop per window); randomness comes only from an explicit ``np.random.Generator``.
Train/validation splits are by episode, or by task (all episodes of held-out task-parameter vectors validate).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import torch

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.types import MetaBatch, Transition

SplitBy = Literal["episode", "task"]
ContextSource = Literal["preceding", "episode"]
CONTEXT_SOURCES = ("preceding", "episode")


class SegmentIndex(NamedTuple):
    """Row indices of B segments (into the buffer's flat per-step arrays).

    Attributes:
        context: ``[B, K]`` int64 rows of the context transitions, oldest first (padded slots hold the episode's
            first row; they are masked, never data).
        context_mask: ``[B, K]`` bool, True where the slot is a real transition (all True without padding).
        target: ``[B, M]`` int64 rows of the targets (with ``context_source="preceding"`` they follow the
            context's last row immediately).
        episode: ``[B]`` int64 episode of each segment.
    """

    context: np.ndarray
    context_mask: np.ndarray
    target: np.ndarray
    episode: np.ndarray


class SegmentSampler:
    """Samples K+M windows uniformly over all valid positions in a set of episodes.

    Every valid window is equally likely (so long episodes contribute proportionally more segments).

    Args:
        episode_starts: ``[num_episodes + 1]`` row offsets (``EpisodeBuffer.episode_starts``).
        context_length: K >= 1.
        target_length: M >= 1.
        episodes: indices of the episodes to draw from (e.g. a training split); all when None.
        pad_context: allow windows whose context runs past the episode start (left-padded, masked).
        min_context: with ``pad_context``, the fewest real context transitions a window may have (0..K).
        context_source: ``"preceding"`` or ``"episode"`` (see the module docstring). ``"episode"`` needs episodes
            of at least 2K + M - 1 steps (shorter ones are skipped) and a generator in :meth:`windows`.

    Raises:
        ValueError: K or M < 1, bad ``min_context`` or ``context_source``, or no episode is long enough (naming K,
            M and the longest episode).
    """

    def __init__(
        self,
        episode_starts: np.ndarray,
        context_length: int,
        target_length: int,
        episodes: np.ndarray | None = None,
        pad_context: bool = False,
        min_context: int = 1,
        context_source: ContextSource = "preceding",
    ) -> None:
        if context_source not in CONTEXT_SOURCES:
            raise ValueError(f"context_source must be one of {CONTEXT_SOURCES}, got {context_source!r}")
        if int(context_length) < 1:
            raise ValueError(f"context_length (K) must be >= 1, got {context_length}")
        if int(target_length) < 1:
            raise ValueError(f"target_length (M) must be >= 1, got {target_length}")
        if pad_context and not 0 <= min_context <= context_length:
            raise ValueError(f"min_context must lie in [0, K={context_length}], got {min_context}")
        self.context_length = k = int(context_length)
        self.target_length = m = int(target_length)
        self.pad_context = bool(pad_context)
        self.context_source = context_source
        starts_all = np.asarray(episode_starts, dtype=np.int64)
        n_eps = starts_all.shape[0] - 1
        if episodes is None:
            episodes = np.arange(n_eps, dtype=np.int64)
        episodes = np.asarray(episodes, dtype=np.int64).reshape(-1)
        if episodes.size and (episodes.min() < 0 or episodes.max() >= n_eps):
            raise IndexError(f"episode indices must lie in [0, {n_eps})")
        lengths = starts_all[episodes + 1] - starts_all[episodes]
        # Targets start at t0 in [first_t0, L - M]: with full contexts t0 >= K, with padding t0 >= min_context.
        self._first_t0 = min_context if pad_context else k
        counts = lengths - m - self._first_t0 + 1
        keep = counts > 0
        if context_source == "episode":
            # A K-window clear of the targets must exist for every t0: at most K + M - 1 of the L - K + 1 window
            # starts overlap them.
            keep &= lengths >= 2 * k + m - 1
        if not keep.any():
            need = m + self._first_t0
            what = f"min_context={min_context} + M" if pad_context else "K + M"
            if context_source == "episode":
                need, what = max(need, 2 * k + m - 1), f"max({what}, 2K + M - 1) with context_source='episode'"
            longest = int(lengths.max()) if lengths.size else 0
            raise ValueError(
                f"no episode is long enough for segments of K={k} context and M={m} target transitions: "
                f"need length >= {what} = {need}, the longest of {episodes.size} episodes has {longest} steps"
            )
        self.episodes = episodes[keep]  # [E'] eligible episodes
        self._starts = starts_all[self.episodes]
        self._lengths = lengths[keep]
        self._counts = counts[keep]
        self._cum = np.cumsum(self._counts)  # window w belongs to the first episode whose cum > w
        self.num_skipped = int((~keep).sum())

    @property
    def num_windows(self) -> int:
        """Total number of distinct windows."""
        return int(self._cum[-1])

    def windows(self, ids: np.ndarray, rng: np.random.Generator | None = None) -> SegmentIndex:
        """The windows with the given ids (``0 <= id < num_windows``), in order.

        ``rng`` draws the context positions with ``context_source="episode"`` (required there, unused otherwise).
        """
        if self.context_source == "episode" and rng is None:
            raise ValueError("SegmentSampler.windows: context_source='episode' draws context positions and needs rng")
        ids = np.asarray(ids, dtype=np.int64)
        which = np.searchsorted(self._cum, ids, side="right")
        offset = ids - (self._cum[which] - self._counts[which])
        t0 = self._first_t0 + offset  # [B] target start within the episode
        start = self._starts[which]
        steps = t0[:, None] + np.arange(-self.context_length, 0, dtype=np.int64)  # [B, K] context step numbers
        mask = steps >= 0
        if self.context_source == "episode":
            first = start + self._clear_of_targets(t0, self._lengths[which], rng)  # [B] row of the oldest context step
            context = first[:, None] + np.arange(self.context_length, dtype=np.int64)
        else:
            context = start[:, None] + np.maximum(steps, 0)
        target = (start + t0)[:, None] + np.arange(self.target_length, dtype=np.int64)
        return SegmentIndex(context, mask, target, self.episodes[which])

    def _clear_of_targets(self, t0: np.ndarray, length: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``[B]`` context start steps, uniform over the K-windows of each episode that miss its targets.

        Window starts ``c`` in ``[0, L - K]`` overlap targets ``t0 .. t0+M-1`` for ``c`` in ``[lo, hi]``; draw from
        the others by drawing among the free count and skipping the overlapping block.
        """
        k, m = self.context_length, self.target_length
        lo = np.maximum(t0 - k + 1, 0)
        hi = np.minimum(t0 + m - 1, length - k)
        blocked = hi - lo + 1
        u = rng.integers(0, length - k + 1 - blocked)  # >= 1 free start: episodes have L >= 2K + M - 1
        return np.where(u < lo, u, u + blocked)

    def sample(self, rng: np.random.Generator, n: int) -> SegmentIndex:
        """Draw ``n`` windows uniformly (with replacement) using ``rng``."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        return self.windows(rng.integers(0, self.num_windows, size=n), rng)

    def sample_fixed(self, rng: np.random.Generator, n: int) -> SegmentIndex:
        """``n`` distinct windows drawn without replacement (all of them, in order, when ``n >= num_windows``).

        Used for a validation set that stays the same across epochs.
        """
        if n >= self.num_windows:
            return self.windows(np.arange(self.num_windows), rng)
        return self.windows(np.sort(rng.choice(self.num_windows, size=n, replace=False)), rng)


# ----- train / validation splits -------------------------------------------------------------------------------
def _num_val(units: int, val_fraction: float, what: str) -> int:
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    if val_fraction == 0.0:
        return 0
    if units < 2:
        raise ValueError(
            f"cannot split {units} {what} into train and validation (val_fraction={val_fraction}): need >= 2"
        )
    return int(min(max(round(val_fraction * units), 1), units - 1))


def split_episodes(num_episodes: int, val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split episode indices at random into train and validation.

    Args:
        num_episodes: number of episodes.
        val_fraction: fraction of episodes for validation, in [0, 1) (at least one when > 0).
        rng: source of randomness.

    Returns:
        ``(train, val)`` sorted int64 episode indices.
    """
    n_val = _num_val(num_episodes, val_fraction, "episodes")
    perm = rng.permutation(num_episodes)
    return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)


def split_by_task(tasks: np.ndarray, val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Hold out whole tasks: every episode of a randomly chosen set of distinct task vectors goes to validation.

    Args:
        tasks: ``[num_episodes, T]`` task vectors (episodes with identical vectors share a task).
        val_fraction: fraction of distinct tasks for validation, in [0, 1) (at least one when > 0).
        rng: source of randomness.

    Returns:
        ``(train, val)`` sorted int64 episode indices; no validation task vector occurs in train.
    """
    tasks = np.asarray(tasks)
    if tasks.ndim != 2:
        raise ValueError(f"tasks must have shape [num_episodes, T], got {tasks.shape}")
    if tasks.shape[0] and tasks.shape[1] == 0:
        raise ValueError("cannot split by task: the episodes have no task parameters (T = 0); split by episode")
    _, task_id = np.unique(tasks, axis=0, return_inverse=True)
    task_id = task_id.reshape(-1)
    n_tasks = int(task_id.max()) + 1 if task_id.size else 0
    n_val = _num_val(n_tasks, val_fraction, "distinct tasks")
    val_tasks = rng.permutation(n_tasks)[:n_val]
    is_val = np.isin(task_id, val_tasks)
    return np.flatnonzero(~is_val).astype(np.int64), np.flatnonzero(is_val).astype(np.int64)


def train_val_split(
    buffer: EpisodeBuffer, val_fraction: float, split_by: SplitBy, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split a buffer's episodes by ``"episode"`` or ``"task"`` (see :func:`split_episodes`, :func:`split_by_task`)."""
    if buffer.num_episodes == 0:
        raise ValueError("cannot split an empty buffer")
    if split_by == "episode":
        return split_episodes(buffer.num_episodes, val_fraction, rng)
    if split_by == "task":
        return split_by_task(buffer.tasks, val_fraction, rng)
    raise ValueError(f"unknown split_by {split_by!r}; valid values are 'episode' and 'task'")


# ----- gathering -------------------------------------------------------------------------------------------------
def gather_segments(buffer: EpisodeBuffer, index: SegmentIndex) -> dict[str, np.ndarray]:
    """Gather the segments' data with vectorised fancy indexing (numpy, no torch).

    Padded context slots are zeroed so a model never sees another step's data there.

    Returns:
        ``context_<field>`` (``[B, K, ...]``), ``target_<field>`` (``[B, M, ...]``) for the fields obs, action,
        next_obs, reward, terminated; ``context_mask [B, K]`` bool; ``task [B, T]`` float32.
    """
    out: dict[str, np.ndarray] = {}
    padded = not index.context_mask.all()
    for name in ("obs", "action", "next_obs", "reward", "terminated"):
        data = buffer.field(name)
        ctx = data[index.context]
        if padded:
            mask = index.context_mask.reshape(index.context_mask.shape + (1,) * (ctx.ndim - 2))
            ctx = np.where(mask, ctx, np.zeros((), dtype=ctx.dtype))
        out[f"context_{name}"] = ctx
        out[f"target_{name}"] = data[index.target]
    out["context_mask"] = index.context_mask
    out["task"] = buffer.tasks[index.episode].astype(np.float32)
    return out


def to_meta_batch(arrays: dict[str, np.ndarray]) -> MetaBatch:
    """Turn :func:`gather_segments` output into a :class:`MetaBatch` of CPU tensors (float32; terminated bool).

    If ``MetaBatch`` has a ``context_mask`` field it is filled; otherwise the mask is dropped (padded context slots
    are zeros).
    """

    def transition(prefix: str) -> Transition:
        return Transition(
            *(torch.from_numpy(np.ascontiguousarray(arrays[f"{prefix}_{f}"])) for f in Transition._fields)
        )

    fields = {
        "context": transition("context"),
        "target": transition("target"),
        "task": torch.from_numpy(np.ascontiguousarray(arrays["task"])),
    }
    if "context_mask" in MetaBatch._fields:
        fields["context_mask"] = torch.from_numpy(np.ascontiguousarray(arrays["context_mask"]))
    return MetaBatch(**fields)
