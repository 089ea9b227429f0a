"""The range a model's task code ``z`` takes on its training data, and clamping ``z`` into it.

A task-conditioned model (``context``, ``recurrent``, ``oracle``) maps a context (or the true task) to a code ``z``
that its networks were trained on only inside the training tasks' range. On a task far outside it (a ball twice as
bouncy as any seen) ``z`` lands where the networks never saw it and their predictions can go wrong in ways the plain
ensemble's do not. Clamping ``z``, dimension by dimension, into the range it took on the training data keeps the
model on codes it was fitted on: the planner then treats the new task as the nearest training-like one.

Usage::

    bounds = measure_latent_range(model, buffer, context_length=10)     # once, after fitting
    agent = MPCAgent(model, planner, ..., latent_range=bounds)           # every adapt() clamps z into it
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from mbmeta.types import Transition

if TYPE_CHECKING:
    from mbmeta.data.buffer import EpisodeBuffer
    from mbmeta.models.dynamics import MetaDynamicsModel


@dataclass(frozen=True)
class LatentRange:
    """Per-dimension bounds of the task code ``z``.

    Attributes:
        low: ``[Z]`` smallest value of each dimension of ``z`` on the training data.
        high: ``[Z]`` largest value (``high >= low``).
    """

    low: Tensor
    high: Tensor

    def __post_init__(self) -> None:
        if self.low.dim() != 1 or self.low.shape != self.high.shape:
            raise ValueError(
                f"LatentRange: low and high must both be [Z], got {tuple(self.low.shape)} and {tuple(self.high.shape)}"
            )
        if not bool(torch.isfinite(self.low).all() and torch.isfinite(self.high).all()):
            raise ValueError("LatentRange: low and high must be finite")
        if bool((self.low > self.high).any()):
            raise ValueError("LatentRange: low must be <= high in every dimension")

    @property
    def dim(self) -> int:
        """Z, the size of the code."""
        return self.low.shape[0]

    def clamp(self, z: Tensor) -> Tensor:
        """``z`` clamped into the range: ``[..., Z] -> [..., Z]`` (bounds moved to ``z``'s device and dtype)."""
        if z.shape[-1] != self.dim:
            raise ValueError(f"LatentRange: z must be [..., Z={self.dim}], got {tuple(z.shape)}")
        return torch.clamp(z, self.low.to(z), self.high.to(z))

    def to(self, device: torch.device | str) -> LatentRange:
        """The same range on ``device``."""
        return LatentRange(self.low.to(device), self.high.to(device))

    def as_dict(self) -> dict[str, list[float]]:
        """JSON-ready ``{"low": [...], "high": [...]}``."""
        return {"low": self.low.tolist(), "high": self.high.tolist()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> LatentRange:
        """The range of :meth:`as_dict`'s form.

        Raises:
            ValueError: a missing key or a non-numeric entry.
        """
        try:
            low, high = (torch.as_tensor(values[k], dtype=torch.float32) for k in ("low", "high"))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"LatentRange needs {{'low': [...], 'high': [...]}} of numbers, got {values!r}") from err
        return cls(low, high)


def context_windows(buffer: EpisodeBuffer, context_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The window an adapting agent sees before each stored step: its episode's last K earlier transitions.

    Args:
        buffer: episodes; step ``i`` of episode ``e`` gets rows ``i-K .. i-1`` of ``e`` (fewer at the start).
        context_length: K >= 1.

    Returns:
        ``rows [N, K]`` int64 buffer rows (oldest first; 0 where masked), ``mask [N, K]`` bool (True on a real
        transition), ``episode [N]`` int64 episode of each step; N = ``buffer.num_transitions``.
    """
    if context_length < 1:
        raise ValueError(f"context_length must be >= 1, got {context_length}")
    starts = buffer.episode_starts
    episode = np.repeat(np.arange(buffer.num_episodes), np.diff(starts))
    step_rows = np.arange(buffer.num_transitions)
    rows = step_rows[:, None] - context_length + np.arange(context_length)[None, :]
    mask = rows >= starts[episode][:, None]
    return np.where(mask, rows, 0), mask, episode


def measure_latent_range(
    model: MetaDynamicsModel, buffer: EpisodeBuffer, context_length: int, *, chunk: int = 4096
) -> LatentRange:
    """The per-dimension range of ``z`` over every step of ``buffer``, adapting as the MPC agent does.

    Each step's ``z`` comes from that step's context window (:func:`context_windows`: the episode's last K earlier
    transitions; the first step of an episode adapts on an empty window) and, for the oracle, the episode's true
    task. With one encoder per ensemble member (``context_per_member``) the range covers every member's codes.

    Args:
        model: a model whose adaptation produces a code (``context``, ``recurrent`` or ``oracle``).
        buffer: the data the model was fitted on (task vectors in the model's task order).
        context_length: K, as the agent will use it.
        chunk: steps adapted per call (memory bound).

    Raises:
        ValueError: the model's adaptation has no code, or the buffer is empty or does not fit the model.
    """
    latent_dim = model.adapter.latent_dim
    if latent_dim == 0:
        raise ValueError(f"adaptation {model.adaptation_name!r} has no task code z to bound (Z = 0)")
    if buffer.num_transitions == 0:
        raise ValueError("measure_latent_range: the buffer holds no transitions")
    if (buffer.obs_dim, buffer.action_dim) != (model.obs_dim, model.action_dim):
        raise ValueError(
            f"measure_latent_range: buffer obs/action dims ({buffer.obs_dim}, {buffer.action_dim}) do not match the "
            f"model's ({model.obs_dim}, {model.action_dim})"
        )
    rows, mask, episode = context_windows(buffer, context_length)
    device = next(model.parameters()).device
    fields = {
        name: torch.as_tensor(np.array(buffer.field(name)), device=device)
        for name in ("obs", "action", "next_obs", "reward", "terminated")
    }
    tasks = torch.as_tensor(np.asarray(buffer.tasks, dtype=np.float32), device=device)
    low = torch.full((latent_dim,), float("inf"), device=device)
    high = torch.full((latent_dim,), float("-inf"), device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for begin in range(0, len(rows), chunk):
                index = torch.as_tensor(rows[begin : begin + chunk], device=device)
                context = Transition(*(fields[name][index] for name in Transition._fields))
                valid = torch.as_tensor(mask[begin : begin + chunk], device=device)
                task = tasks[torch.as_tensor(episode[begin : begin + chunk], device=device)]
                z = model.adapt_normalised(model.normalise_segment(context), valid, task).z.reshape(-1, latent_dim)
                low = torch.minimum(low, z.amin(0))
                high = torch.maximum(high, z.amax(0))
    finally:
        model.train(was_training)
    return LatentRange(low.cpu(), high.cpu())
