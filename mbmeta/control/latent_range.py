"""Measuring the range a model's task code ``z`` takes on its training data (see :mod:`mbmeta.models.latent_range`).

The range is measured as the MPC agent adapts: before each stored step, on that step's window of the episode's last
K earlier transitions (and, for the oracle, the episode's true task).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.models.dynamics import MetaDynamicsModel
from mbmeta.models.latent_range import LatentRange
from mbmeta.types import Transition


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


def step_codes(model: MetaDynamicsModel, buffer: EpisodeBuffer, context_length: int, *, chunk: int = 4096) -> Tensor:
    """The code ``z`` the agent would adapt to before every step of ``buffer``, on the model's device.

    ``[N, Z]``, or ``[N, E, Z]`` with one encoder per ensemble member (``context_per_member``).

    Each step's ``z`` comes from that step's context window (:func:`context_windows`: the episode's last K earlier
    transitions; the first step of an episode adapts on an empty window) and, for the oracle, the episode's true
    task (task vectors in the model's task order).

    Args:
        model: a model whose adaptation produces a code (``context``, ``recurrent`` or ``oracle``).
        buffer: the episodes.
        context_length: K, as the agent will use it.
        chunk: steps adapted per call (memory bound).

    Raises:
        ValueError: the model's adaptation has no code, or the buffer is empty or does not fit the model.
    """
    if model.adapter.latent_dim == 0:
        raise ValueError(f"adaptation {model.adaptation_name!r} has no task code z to bound (Z = 0)")
    if buffer.num_transitions == 0:
        raise ValueError("task codes: the buffer holds no transitions")
    if (buffer.obs_dim, buffer.action_dim) != (model.obs_dim, model.action_dim):
        raise ValueError(
            f"task codes: buffer obs/action dims ({buffer.obs_dim}, {buffer.action_dim}) do not match the "
            f"model's ({model.obs_dim}, {model.action_dim})"
        )
    rows, mask, episode = context_windows(buffer, context_length)
    device = next(model.parameters()).device
    fields = {name: torch.as_tensor(np.array(buffer.field(name)), device=device) for name in Transition._fields}
    tasks = torch.as_tensor(np.asarray(buffer.tasks, dtype=np.float32), device=device)
    codes = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for begin in range(0, len(rows), chunk):
                index = torch.as_tensor(rows[begin : begin + chunk], device=device)
                context = Transition(*(fields[name][index] for name in Transition._fields))
                valid = torch.as_tensor(mask[begin : begin + chunk], device=device)
                task = tasks[torch.as_tensor(episode[begin : begin + chunk], device=device)]
                z = model.adapt_normalised(model.normalise_segment(context), valid, task).z  # [B, Z] or [E, B, Z]
                codes.append(z if z.dim() == 2 else z.transpose(0, 1))
    finally:
        model.train(was_training)
    return torch.cat(codes)


def measure_latent_range(
    model: MetaDynamicsModel, buffer: EpisodeBuffer, context_length: int, *, chunk: int = 4096
) -> LatentRange:
    """The per-dimension range of ``z`` over every step of ``buffer``, adapting as the MPC agent does.

    The minimum and maximum of :func:`step_codes` (same arguments and errors); with one encoder per ensemble member
    the range covers every member's codes.
    """
    z = step_codes(model, buffer, context_length, chunk=chunk).flatten(0, -2)
    return LatentRange(z.amin(0).cpu(), z.amax(0).cpu())
